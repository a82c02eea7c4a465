import { lstat, readlink } from 'node:fs/promises';
import { isAbsolute, normalize } from 'node:path';
import { InvalidInputError } from '../../util/errors.js';
import { SymlinkLoopError } from './errors.js';

/** Linux gives up after 40 hops; securejoin allows 255. We follow securejoin so results match runc. */
export const MAX_SYMLINK_HOPS = 255;

/**
 * Cleans a path lexically (`.` and `..` and repeated or trailing slashes) and makes it relative to
 * the root: a leading `/` means "the root", as Docker and containerd read absolute tar names.
 * Returns the components, or `null` when a `..` would climb above the root. No file system access:
 * symlinks are the business of {@link resolveInRoot}.
 */
export function splitRootedPath(path: string): string[] | null {
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) return null;
      out.pop();
      continue;
    }
    out.push(part);
  }
  return out;
}

function canonicalRoot(root: string): string {
  if (!isAbsolute(root)) throw new InvalidInputError(`root must be an absolute path, got ${JSON.stringify(root)}`);
  const clean = normalize(root);
  return clean.length > 1 && clean.endsWith('/') ? clean.slice(0, -1) : clean;
}

function hostPath(root: string, components: readonly string[]): string {
  if (components.length === 0) return root;
  return root === '/' ? `/${components.join('/')}` : `${root}/${components.join('/')}`;
}

/**
 * Resolves `path` inside `root` the way the kernel would if `root` were `/` (a chroot), in the
 * manner of Go's filepath-securejoin: walk one component at a time; a symlink is read and its
 * target spliced in front of the rest of the path (absolute targets restart from the root); `..`
 * never climbs above the root. The result is always `root` or below it, and every component that
 * exists at the time of the walk is a real directory or the final name, never a symlink.
 *
 * Components that do not exist are taken literally, so the result also names files about to be
 * created. The final component is followed too when it is a symlink; callers that must not follow
 * it (everything that writes) resolve the parent and append the base name themselves, see
 * {@link resolveParentInRoot}.
 *
 * `root` must be absolute and should be canonical (no symlinks in it): it is trusted as given.
 * The answer holds only while nobody else changes the tree: the unpacker owns its rootfs while it
 * works, and COPY in the builder runs against a stopped container's rootfs.
 */
export async function resolveInRoot(root: string, path: string): Promise<string> {
  const base = canonicalRoot(root);
  // Components still to walk, last element next; symlink targets are pushed on top.
  const pending = path.split('/').reverse();
  const resolved: string[] = [];
  let hops = 0;
  while (pending.length > 0) {
    const part = pending.pop() as string;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      // `resolved` holds no symlinks, so the lexical parent is the real parent; at the root it stays.
      resolved.pop();
      continue;
    }
    const candidate = hostPath(base, [...resolved, part]);
    let isLink: boolean;
    try {
      isLink = (await lstat(candidate)).isSymbolicLink();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Missing (or below a non-directory): nothing to follow; the caller's own operation will fail
      // with the right error if it needed the path to exist.
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      isLink = false;
    }
    if (!isLink) {
      resolved.push(part);
      continue;
    }
    if (++hops > MAX_SYMLINK_HOPS) throw new SymlinkLoopError(path, MAX_SYMLINK_HOPS);
    const target = await readlink(candidate);
    if (target.startsWith('/')) resolved.length = 0;
    for (const t of target.split('/').reverse()) pending.push(t);
  }
  return hostPath(base, resolved);
}

/**
 * Resolves everything but the last component, which is returned unresolved. This is the form every
 * write needs: the directory is found through symlinks inside the root, the entry itself is then
 * replaced (never followed) with lstat/unlink and O_NOFOLLOW.
 */
export async function resolveParentInRoot(root: string, components: readonly string[]): Promise<{ parent: string; name: string; path: string }> {
  if (components.length === 0) throw new InvalidInputError('resolveParentInRoot needs at least one component');
  const name = components[components.length - 1];
  const parent = await resolveInRoot(root, components.slice(0, -1).join('/'));
  return { parent, name, path: parent === '/' ? `/${name}` : `${parent}/${name}` };
}
