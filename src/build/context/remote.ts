/**
 * Build contexts named by URL, as `docker build` and `buildah bud` take them:
 * - a Git repository: `https://host/org/repo.git#ref:subdir`, `git://host/repo.git`, `ssh://...`,
 *   `git@host:org/repo.git`, `github.com/org/repo` (the fragment is optional: `#ref`, `#ref:dir`,
 *   `#:dir`). The revision is fetched shallowly with the `git` binary (build/remote/git.ts), the
 *   `.git` directory is dropped (BuildKit's default), and the context is the subdirectory, which
 *   must stay inside the checkout;
 * - any other http(s) URL: a tar archive (plain or compressed), downloaded and extracted.
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { resolveInRoot } from '../../runtime/unpack/index.js';
import { InvalidInputError } from '../../util/errors.js';

export type RemoteContext = { kind: 'git'; url: string; ref?: string; subdir?: string } | { kind: 'http'; url: string };

const GIT_PREFIX = /^(git:\/\/|ssh:\/\/|git@[^:/]+:|github\.com\/)/i;
const HTTP = /^https?:\/\//i;

/** The remote context a `build` argument names, or undefined for a local path (or `-`). */
export function remoteContextOf(spec: string): RemoteContext | undefined {
  const hash = spec.indexOf('#');
  const base = hash < 0 ? spec : spec.slice(0, hash);
  const fragment = hash < 0 ? undefined : spec.slice(hash + 1);
  const isGit = GIT_PREFIX.test(base) || (HTTP.test(base) && /\.git\/?$/i.test(base));
  if (!isGit) {
    if (HTTP.test(spec)) return { kind: 'http', url: spec };
    return undefined;
  }
  const url = /^github\.com\//i.test(base) ? `https://${base}` : base;
  const out: RemoteContext = { kind: 'git', url };
  if (fragment !== undefined && fragment !== '') {
    const colon = fragment.indexOf(':');
    const ref = colon < 0 ? fragment : fragment.slice(0, colon);
    const subdir = colon < 0 ? '' : fragment.slice(colon + 1);
    if (ref !== '') {
      // A ref is handed to `git fetch`: no option-like or odd names.
      if (ref.startsWith('-') || !/^[A-Za-z0-9._/@+-]+$/.test(ref)) throw new InvalidInputError(`build context ${redact(spec)}: "${ref}" is not a Git ref`);
      out.ref = ref;
    }
    if (subdir !== '') out.subdir = subdir;
  }
  return out;
}

/** The spec without user:password, for messages. */
export function redact(spec: string): string {
  return spec.replace(/^([a-z+]+:\/\/)[^/@]*@/i, '$1');
}

/**
 * Fetches a remote context into `dir` (empty, made by the caller) and returns the context root in
 * it. Only the tar archive of an http context is downloaded to `dir/.download`, then removed.
 */
export async function fetchRemoteContext(remote: RemoteContext, dir: string, signal?: AbortSignal): Promise<{ root: string; archive?: string }> {
  if (remote.kind === 'http') {
    const { fetchUrl } = await import('../layers/url.js');
    const got = await fetchUrl(remote.url, { workDir: join(dir, '.download'), ...(signal ? { signal } : {}) });
    return { root: join(dir, 'root'), archive: got.path };
  }
  const { fetchGit } = await import('../remote/git.js');
  const checkout = join(dir, 'git');
  await mkdir(checkout);
  await fetchGit(remote.url, remote.ref, checkout, signal ? { signal } : {});
  await rm(join(checkout, '.git'), { recursive: true, force: true });
  if (remote.subdir === undefined) return { root: checkout };
  // Symlinks along the subdirectory are followed inside the checkout only.
  const root = await resolveInRoot(checkout, remote.subdir);
  const st = await stat(root).catch(() => undefined);
  if (!st?.isDirectory()) throw new InvalidInputError(`build context ${redact(remote.url)}: "${remote.subdir}" is not a directory at ${remote.ref ?? 'HEAD'}`);
  return { root };
}
