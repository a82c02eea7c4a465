import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { parseEntry, type LayerEntry } from './entry.js';
import type { UnpackOptions, UnpackResult } from './types.js';
import { applyContext, applyParsed, entryError, readLayer, type LayerStreamResult } from './unpack.js';
import { classifyWhiteout, type Whiteout } from './whiteout.js';

/** One entry of a staged layer, in tar order; a regular file's content waits in `staged`. */
export interface StagedEntry {
  entry: LayerEntry;
  whiteout: Whiteout | undefined;
  staged?: string;
}

/** A layer read, checked and hashed, its file contents on disk, ready to be applied onto a rootfs. */
export interface StagedLayer extends LayerStreamResult {
  ops: StagedEntry[];
}

const WRITE_BATCH = 1024 * 1024;

/** Writes every byte of `chunks` at the current position (writev may write less than asked). */
async function writeAll(fh: FileHandle, chunks: Buffer[]): Promise<void> {
  let rest = chunks;
  for (;;) {
    const total = rest.reduce((n, c) => n + c.length, 0);
    if (total === 0) return;
    let done = (await fh.writev(rest)).bytesWritten;
    if (done === total) return;
    const next: Buffer[] = [];
    for (const c of rest) {
      if (done >= c.length) done -= c.length;
      else {
        next.push(c.subarray(done));
        done = 0;
      }
    }
    rest = next;
  }
}

const STAGE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/**
 * The first half of an unpack, which needs no rootfs: reads the layer stream (decompress, diffID,
 * limits, as unpackLayer), validates every header (names, link targets, ids, whiteout names: a
 * hostile entry is refused here, with the same errors) and writes each regular file's bytes to a
 * numbered file in `stageDir` (an empty directory of the caller's, on the rootfs's file system).
 *
 * Nothing here depends on the layers below, so the layers of an image stage concurrently while
 * the downloads arrive; applyStagedLayer then applies them in order, which only links files.
 */
export async function stageLayer(
  layer: Readable,
  stageDir: string,
  opts: Pick<UnpackOptions, 'compression' | 'mediaType' | 'limits' | 'signal'> = {},
): Promise<StagedLayer> {
  const ops: StagedEntry[] = [];
  const read = await readLayer(layer, opts, async (data) => {
    const entry = parseEntry(data.header);
    const whiteout = classifyWhiteout(entry.name, entry.components);
    const op: StagedEntry = { entry, whiteout };
    if (entry.kind === 'file' && whiteout === undefined) {
      const path = `${stageDir}/${ops.length}`;
      const fh = await open(path, STAGE_FLAGS, 0o600);
      try {
        // Chunks are gathered into one writev of ~1 MiB: stored gzip blocks arrive as 64 KiB slices.
        let batch: Buffer[] = [];
        let batched = 0;
        for await (const chunk of data) {
          batch.push(chunk);
          batched += chunk.length;
          if (batched >= WRITE_BATCH) {
            await writeAll(fh, batch);
            batch = [];
            batched = 0;
          }
        }
        if (batched > 0) await writeAll(fh, batch);
      } finally {
        await fh.close();
      }
      op.staged = path;
    }
    ops.push(op);
    data.resume();
  });
  return { ...read, ops };
}

/**
 * The second half: applies a staged layer onto a rootfs exactly as unpackLayer would have applied
 * its stream (same path resolution inside the root, whiteouts, hardlink checks, ownership and
 * deferred directory metadata), except that file contents are hardlinked from the staging dir.
 * The staging dir's names are left for the caller to remove with it.
 */
export async function applyStagedLayer(
  rootfs: string,
  staged: StagedLayer,
  opts: Pick<UnpackOptions, 'rootless' | 'idMap' | 'signal'> = {},
): Promise<UnpackResult> {
  opts.signal?.throwIfAborted();
  const ctx = await applyContext(rootfs, opts);
  let whiteouts = 0;
  for (const op of staged.ops) {
    opts.signal?.throwIfAborted();
    try {
      if (await applyParsed(ctx, op.entry, op.whiteout, op.staged !== undefined ? { staged: op.staged } : EMPTY)) whiteouts++;
    } catch (err) {
      throw entryError(op.entry.name, err);
    }
  }
  await ctx.dirs.applyAll(ctx.ownership, opts.signal);
  return { entries: staged.entries, bytes: staged.bytes, diffID: staged.diffID, compression: staged.compression, whiteouts, skipped: ctx.skipped };
}

/** The data of an entry that has none (directories, links): nothing to read. */
const EMPTY: AsyncIterable<Buffer> = { [Symbol.asyncIterator]: () => ({ next: async () => ({ done: true, value: undefined }) }) };
