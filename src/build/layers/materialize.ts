import { constants } from 'node:fs';
import { chmod, chown, copyFile, link, lchown, lstat, lutimes, mkdir, open, rm, symlink, unlink, utimes } from 'node:fs/promises';
import { StevedoreError } from '../../util/errors.js';
import { compareEntryNames, type LayerEntry } from './entry.js';
import { sourceIdentity } from './fs-entry.js';

/** Files copied at once: enough to keep libuv's pool busy, few enough to stay within fd limits. */
const PARALLEL = 16;

/** A layer whose entries cannot be applied here (the caller unpacks the layer instead). */
export class NotMaterializableError extends StevedoreError {
  constructor(why: string) {
    super('NOT_MATERIALIZABLE', why);
  }
}

/**
 * Whether `entries` can be applied by `materializeEntries`: regular files, directories, symlinks
 * and hardlinks only (no whiteouts: a COPY layer never deletes; no devices or fifos, which the
 * unpacker records as skipped), and every entry's parent directory is itself an entry, so applying
 * in order never passes through a symlink of the lower rootfs.
 */
export function materializable(entries: readonly LayerEntry[]): string | undefined {
  const dirs = new Set<string>();
  for (const e of entries) if (e.type === 'directory') dirs.add(e.name);
  for (const e of entries) {
    if (e.type !== 'file' && e.type !== 'directory' && e.type !== 'symlink') return `entry ${e.name} is a ${e.type}`;
    if (e.type === 'file' && (!e.source || !e.sourceId)) return `entry ${e.name} has no recorded source`;
    const slash = e.name.lastIndexOf('/');
    if (slash > 0 && !dirs.has(e.name.slice(0, slash))) return `parent of ${e.name} is not in the layer`;
  }
  return undefined;
}

function mtimeOf(e: LayerEntry, timestamp: number | undefined): Date {
  const t = timestamp !== undefined && e.mtime > timestamp ? timestamp : e.mtime;
  return new Date(Math.max(0, Math.floor(t)) * 1000);
}

/** Removes what is at `path` unless it is a directory and a directory is wanted (then they merge). */
async function clear(path: string, keepDirectory: boolean): Promise<boolean> {
  const st = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!st) return false;
  if (st.isDirectory()) {
    if (keepDirectory) return true;
    await rm(path, { recursive: true, force: true });
    return false;
  }
  await unlink(path);
  return false;
}

async function copyOne(e: LayerEntry, path: string, mtime: Date, parentIsNew: boolean): Promise<void> {
  // In a directory this layer created nothing can be in the way.
  if (!parentIsNew) await clear(path, false);
  // EXCL: a new inode, never one shared with the lower snapshot's hardlinked tree.
  await copyFile(e.source as string, path, constants.COPYFILE_EXCL);
  // The layer was written from what the plan saw; a source changed since would make the snapshot
  // differ from the layer, so it is refused (the caller then unpacks the layer itself).
  const now = await lstat(e.source as string);
  if (!now.isFile() || sourceIdentity(now) !== e.sourceId) throw new NotMaterializableError(`${e.source} changed while the layer was written`);
  // By path: the file was just created here, under directories this layer made real (no symlink
  // on the way). The copy has the source's mode and this process's owner (or a setgid parent's
  // group); only what differs from the entry is changed, which for a context file (root's, same
  // mode) is nothing: two inode updates per file fewer. chown first: it clears setuid/setgid,
  // which chmod then sets.
  const made = await lstat(path);
  const chowned = made.uid !== e.uid || made.gid !== e.gid;
  if (chowned) await chown(path, e.uid, e.gid);
  if (chowned || (made.mode & 0o7777) !== (e.mode & 0o7777)) await chmod(path, e.mode & 0o7777);
  await utimes(path, mtime, mtime);
}

/**
 * Applies a COPY layer's planned entries onto `rootfs` (a hardlinked copy of the parent snapshot),
 * giving what unpacking the layer's tar would give: the same names, types, owners, modes, mtimes
 * (clamped to `timestamp` as the tar writer clamps them), content and hardlinks; directory metadata
 * last, as the unpacker defers it. Files are copied with copy_file_range, several at once, instead
 * of being read back from the tar. As root only (owners are set as the layer states them).
 */
export async function materializeEntries(
  rootfs: string,
  entries: readonly LayerEntry[],
  opts: { timestamp?: number; signal?: AbortSignal } = {},
): Promise<void> {
  const why = materializable(entries);
  if (why) throw new NotMaterializableError(why);
  const sorted = [...entries].sort((a, b) => compareEntryNames(a.name, b.name));
  const dirs: LayerEntry[] = [];
  /** Directories this layer created (not merged with the lower ones): their children need no clearing. */
  const fresh = new Set<string>();
  const parentOf = (name: string): string => name.slice(0, Math.max(0, name.lastIndexOf('/')));
  // Directories first, in order (parents before children), so files can then go in any order.
  for (const e of sorted) {
    if (e.type !== 'directory') continue;
    opts.signal?.throwIfAborted();
    const path = `${rootfs}/${e.name}`;
    if (fresh.has(parentOf(e.name)) || !(await clear(path, true))) {
      await mkdir(path, { mode: 0o755 });
      fresh.add(e.name);
    }
    dirs.push(e);
  }
  const firstPath = new Map<string, string>();
  const files: LayerEntry[] = [];
  const links: { e: LayerEntry; target: string }[] = [];
  for (const e of sorted) {
    if (e.type !== 'file') continue;
    if (e.inode) {
      const first = firstPath.get(e.inode);
      if (first !== undefined) {
        links.push({ e, target: first });
        continue;
      }
      firstPath.set(e.inode, e.name);
    }
    files.push(e);
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      opts.signal?.throwIfAborted();
      const e = files[next++]!;
      await copyOne(e, `${rootfs}/${e.name}`, mtimeOf(e, opts.timestamp), fresh.has(parentOf(e.name)));
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, files.length) }, worker));
  for (const { e, target } of links) {
    const path = `${rootfs}/${e.name}`;
    await clear(path, false);
    await link(`${rootfs}/${target}`, path);
  }
  for (const e of sorted) {
    if (e.type !== 'symlink') continue;
    const path = `${rootfs}/${e.name}`;
    await clear(path, false);
    await symlink(e.linkname ?? '', path);
    await lchown(path, e.uid, e.gid);
    const t = mtimeOf(e, opts.timestamp);
    await lutimes(path, t, t);
  }
  for (const e of dirs.reverse()) {
    opts.signal?.throwIfAborted();
    const fh = await open(`${rootfs}/${e.name}`, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    try {
      await fh.chown(e.uid, e.gid);
      await fh.chmod(e.mode & 0o7777);
      const t = mtimeOf(e, opts.timestamp);
      await fh.utimes(t, t);
    } finally {
      await fh.close();
    }
  }
}
