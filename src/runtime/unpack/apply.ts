import { constants } from 'node:fs';
import { link, lstat, mkdir, open, rm, symlink, unlink } from 'node:fs/promises';
import type { DeferredDirectories } from './dirmeta.js';
import type { LayerEntry } from './entry.js';
import { UnsafeLayerEntryError } from './errors.js';
import { applyToHandle, applyToSymlink, type OwnershipPolicy } from './metadata.js';
import { resolveParentInRoot } from './rootpath.js';
import type { SkippedEntry } from './types.js';
import type { LayerPaths } from './whiteout.js';

/** Everything an entry writer needs; one per layer. */
export interface ApplyContext {
  root: string;
  ownership: OwnershipPolicy;
  paths: LayerPaths;
  dirs: DeferredDirectories;
  skipped: SkippedEntry[];
  /**
   * Parent directories already resolved and created by this layer (cleaned relative path -> host
   * path). Layers list thousands of files per directory, and re-walking every component for each
   * costs more than writing the file. Only removing something can invalidate an answer (a new
   * symlink can only appear where nothing was, which no cached path passes through), so every
   * removal clears the whole cache.
   */
  parents: Map<string, string>;
  signal?: AbortSignal;
}

/**
 * A file entry's content: the tar's data stream, or a file that already holds it (written by
 * stageLayer into a private staging directory on the same file system), which is hardlinked into
 * place instead of copied.
 */
export type EntryData = AsyncIterable<Buffer> | { staged: string };

/** Creates a file that cannot already exist and cannot be a symlink, whatever raced us. */
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/**
 * Clears the slot for a new entry. A directory over a directory merges (lower children stay); any
 * other combination replaces: files and symlinks are unlinked (a symlink is removed, never
 * followed), a directory under a non-directory goes with its whole tree.
 */
async function clearSlot(ctx: ApplyContext, path: string, keepDirectory: boolean): Promise<'merge' | 'empty'> {
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'empty';
    throw err;
  }
  if (st.isDirectory() && keepDirectory) return 'merge';
  ctx.parents.clear();
  if (st.isDirectory()) {
    await rm(path, { recursive: true, force: true });
    ctx.dirs.forgetTree(path);
    return 'empty';
  }
  await unlink(path);
  return 'empty';
}

async function writeFile(ctx: ApplyContext, entry: LayerEntry, path: string, data: AsyncIterable<Buffer>): Promise<void> {
  await clearSlot(ctx, path, false);
  // 0600 until the header's mode is applied, so nobody reads a half-written setuid binary.
  const fh = await open(path, CREATE_FLAGS, 0o600);
  try {
    for await (const chunk of data) {
      ctx.signal?.throwIfAborted();
      let off = 0;
      while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
    }
    await applyToHandle(fh, entry.name, entry.meta, ctx.ownership);
  } finally {
    await fh.close();
  }
}

/**
 * Puts a staged file at `path`: link(2) never follows a symlink in the new name and fails if the
 * name exists, like O_CREAT|O_EXCL|O_NOFOLLOW. The staged file is ours and 0600 until the header's
 * metadata is applied through a descriptor of it, as for a written file.
 */
async function linkStagedFile(ctx: ApplyContext, entry: LayerEntry, path: string, staged: string): Promise<void> {
  await clearSlot(ctx, path, false);
  await link(staged, path);
  const fh = await open(staged, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    await applyToHandle(fh, entry.name, entry.meta, ctx.ownership);
  } finally {
    await fh.close();
  }
}

async function writeHardlink(ctx: ApplyContext, entry: LayerEntry, path: string): Promise<void> {
  const linkComponents = entry.linkComponents as string[];
  // The target's directories resolve inside the root like any path; the target itself must be a
  // regular file already unpacked (link(2) would otherwise pin a symlink, device or directory).
  const target = (await resolveParentInRoot(ctx.root, linkComponents)).path;
  let st;
  try {
    st = await lstat(target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new UnsafeLayerEntryError(entry.name, `hardlink target ${JSON.stringify(entry.linkname)} does not exist in the rootfs`);
    }
    throw err;
  }
  if (!st.isFile()) throw new UnsafeLayerEntryError(entry.name, `hardlink target ${JSON.stringify(entry.linkname)} is not a regular file`);
  if (target === path) throw new UnsafeLayerEntryError(entry.name, 'hardlink to itself');
  await clearSlot(ctx, path, false);
  // Owner, mode and times belong to the shared inode, which the target's own entry already set.
  await link(target, path);
}

async function drain(data: EntryData): Promise<void> {
  if (!(Symbol.asyncIterator in data)) return;
  for await (const _ of data) {
    // discard
  }
}

/**
 * Applies one non-whiteout entry below the root. The entry's directories are resolved inside the
 * root (symlinks planted by this or earlier layers included); its last component is replaced, never
 * followed. Missing parents are created as plain 0755 directories, as Docker does.
 */
export async function applyEntry(ctx: ApplyContext, entry: LayerEntry, data: EntryData): Promise<void> {
  if (entry.components.length === 0) {
    // `./` itself: only its metadata, applied at the end like every directory's.
    ctx.dirs.record(ctx.root, entry.name, [], entry.meta);
    await drain(data);
    return;
  }
  const parentKey = entry.components.slice(0, -1).join('/');
  let parent = ctx.parents.get(parentKey);
  if (parent === undefined) {
    parent = (await resolveParentInRoot(ctx.root, entry.components)).parent;
    await mkdir(parent, { recursive: true, mode: 0o755 });
    ctx.parents.set(parentKey, parent);
  }
  const name = entry.components[entry.components.length - 1];
  const path = parent === '/' ? `/${name}` : `${parent}/${name}`;

  if (entry.xattrs.includes('security.capability')) {
    ctx.skipped.push({ path: entry.name, type: 'xattr', reason: 'file capabilities (security.capability) are not applied: Node has no setxattr' });
  }

  switch (entry.kind) {
    case 'file':
      if (Symbol.asyncIterator in data) await writeFile(ctx, entry, path, data);
      else await linkStagedFile(ctx, entry, path, data.staged);
      break;
    case 'directory':
      if ((await clearSlot(ctx, path, true)) === 'empty') await mkdir(path, { mode: 0o755 });
      ctx.dirs.record(path, entry.name, entry.components, entry.meta);
      break;
    case 'symlink':
      await clearSlot(ctx, path, false);
      await symlink(entry.linkname as string, path);
      await applyToSymlink(path, entry.name, entry.meta, ctx.ownership);
      break;
    case 'hardlink':
      await writeHardlink(ctx, entry, path);
      break;
    case 'character-device':
    case 'block-device':
    case 'fifo':
      // Node has no mknod(2). What the lower layers had here is still replaced, so the snapshot
      // differs from the image only by the missing node (runtimes bind /dev anyway).
      await clearSlot(ctx, path, false);
      ctx.skipped.push({
        path: entry.name,
        type: entry.kind,
        reason: entry.kind === 'fifo' ? 'fifos are not created: Node has no mkfifo/mknod' : 'device nodes are not created: Node has no mknod',
      });
      break;
  }
  await drain(data);
  ctx.paths.markWritten(path);
}
