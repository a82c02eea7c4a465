import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { VerifyingStream, digestHex, type Digest } from '../../oci/digest.js';
import { MediaType } from '../../oci/mediatype.js';
import { InvalidInputError, StevedoreError, errorMessage } from '../../util/errors.js';
import { tempSibling } from '../../util/fs.js';
import { rootLogger } from '../../util/log.js';
import { TarWriter, type TarEntryHeader } from '../../util/tar/write.js';
import { compareEntryNames, type LayerEntry } from './entry.js';
import { LAYER_MEDIA_TYPE, type LayerFile } from './layer-file.js';
import { ParallelGzip } from './parallel-gzip.js';

const log = rootLogger.child({ component: 'build-layer' });

export interface WriteLayerOptions {
  /** Directory the finished layer is put in (created if missing); named `<hex>.tar.gz` (`<hex>.tar` uncompressed). */
  workDir: string;
  /** SOURCE_DATE_EPOCH in seconds: every mtime later than this is written as this. */
  timestamp?: number;
  /** gzip level; 6 (zlib's default) unless told otherwise. Same level, same bytes. */
  gzipLevel?: number;
  /**
   * Blocks compressed at once (see ParallelGzip); default: the cores, at most 8. 1 writes a single
   * gzip member with one zlib stream. The bytes depend on this being 1 or not, never on the number.
   */
  gzipThreads?: number;
  /**
   * false: write the plain tar (media type `...layer.v1.tar`, digest = diffID), for a caller that
   * keeps layers locally and compresses only when it pushes. Default true.
   */
  compress?: boolean;
  signal?: AbortSignal;
}

/** Files up to this size are read whole (see writeLayer); larger ones are streamed. */
const SMALL_FILE = 1024 * 1024;
/**
 * Files up to this size are read with one blocking call when their turn comes: open, read and close
 * in one go cost a few microseconds, where the promise API makes four round trips through libuv's
 * pool, and that overhead on the main thread is most of the time for thousands of small files.
 * (A blocked loop for one such read is shorter than those round trips.)
 */
export const SYNC_READ = 128 * 1024;
const READ_AHEAD_FILES = 32;
const READ_AHEAD_BYTES = 8 * 1024 * 1024;

function checkName(name: string): void {
  if (name === '' || name.startsWith('/') || name.endsWith('/') || name.split('/').some((p) => p === '' || p === '.' || p === '..')) {
    throw new InvalidInputError(`layer entry name ${JSON.stringify(name)} is not a clean relative path`);
  }
}

/** The tar header of a planned entry; a whiteout is an empty regular file (its name says what it deletes). */
function header(e: LayerEntry, timestamp: number | undefined): TarEntryHeader {
  const mtime = timestamp !== undefined && e.mtime > timestamp ? timestamp : e.mtime;
  const base = { name: e.name, mode: e.mode, uid: e.uid, gid: e.gid, mtime: new Date(Math.max(0, Math.floor(mtime)) * 1000) };
  switch (e.type) {
    case 'file':
      return { ...base, type: 'file', size: e.size ?? 0 };
    case 'whiteout':
      return { ...base, type: 'file', size: 0 };
    case 'symlink':
      return { ...base, type: 'symlink', linkname: e.linkname ?? '' };
    case 'character-device':
    case 'block-device':
      return { ...base, type: e.type, devmajor: e.devmajor ?? 0, devminor: e.devminor ?? 0 };
    case 'directory':
    case 'fifo':
      return { ...base, type: e.type };
  }
}

/**
 * Streams `entries` as a deterministic layer: sorted (see compareEntryNames), numeric owners only,
 * mtimes clamped to `timestamp`, files sharing an inode written once and linked after. The tar flows
 * through a hash (diffID), gzip and a second hash (digest) into a temp file that is renamed into place
 * only when complete, so the same entries with the same timestamp always give the same bytes and a
 * failed write leaves nothing behind.
 */
export async function writeLayer(entries: readonly LayerEntry[], opts: WriteLayerOptions): Promise<LayerFile> {
  const started = Date.now();
  const sorted = [...entries].sort((a, b) => compareEntryNames(a.name, b.name));
  for (let i = 0; i < sorted.length; i++) {
    checkName(sorted[i].name);
    if (i > 0 && sorted[i].name === sorted[i - 1].name) {
      throw new InvalidInputError(`layer entry ${JSON.stringify(sorted[i].name)} planned twice`);
    }
  }
  await mkdir(opts.workDir, { recursive: true });
  const tmp = tempSibling(join(opts.workDir, 'layer.tar.gz'));
  const tar = new TarWriter();
  const diff = new VerifyingStream({});
  const blob = new VerifyingStream({});
  const compress = opts.compress ?? true;
  const level = opts.gzipLevel ?? 6;
  const gz =
    (opts.gzipThreads ?? 0) === 1 ? createGzip({ level }) : new ParallelGzip({ level, ...(opts.gzipThreads ? { concurrency: opts.gzipThreads } : {}) });
  const stages: NodeJS.ReadWriteStream[] = compress ? [diff, gz, blob] : [diff];
  const writing = pipeline(
    [tar.stream, ...stages, createWriteStream(tmp, { mode: 0o644 })] as unknown as [Readable, NodeJS.WritableStream],
    opts.signal ? { signal: opts.signal } : {},
  );
  writing.catch(() => undefined); // awaited below; a failure also surfaces through the entry writes
  try {
    const firstPath = new Map<string, string>();
    // Small files are read whole, several ahead of the one being packed: a stream per file costs
    // more than its content (a context of thousands of small files), and the reads overlap.
    const ahead = new Map<number, Promise<Buffer>>();
    let next = 0;
    let aheadBytes = 0;
    const small = (e: LayerEntry): boolean => e.type === 'file' && !!e.source && (e.size ?? 0) > SYNC_READ && (e.size ?? 0) <= SMALL_FILE;
    const readAhead = (from: number): void => {
      next = Math.max(next, from);
      while (next < sorted.length && ahead.size < READ_AHEAD_FILES && aheadBytes < READ_AHEAD_BYTES) {
        const e = sorted[next];
        if (small(e)) {
          const p = readFile(e.source as string);
          p.catch(() => undefined); // awaited when its turn comes
          ahead.set(next, p);
          aheadBytes += e.size ?? 0;
        }
        next++;
      }
    };
    for (const [i, e] of sorted.entries()) {
      opts.signal?.throwIfAborted();
      readAhead(i + 1);
      const h = header(e, opts.timestamp);
      if (e.type === 'file') {
        if (e.inode) {
          const first = firstPath.get(e.inode);
          if (first !== undefined) {
            if (ahead.delete(i)) aheadBytes -= e.size ?? 0;
            await tar.add({ ...h, type: 'link', linkname: first, size: 0 });
            continue;
          }
          firstPath.set(e.inode, e.name);
        }
        if (!e.source) throw new InvalidInputError(`layer entry ${JSON.stringify(e.name)} has no content source`);
        const pending = ahead.get(i);
        if ((e.size ?? 0) > 0 && (e.size ?? 0) <= SYNC_READ) {
          const body = readFileSync(e.source);
          if (body.length !== h.size)
            throw new StevedoreError('SOURCE_CHANGED', `${e.source} changed size while the layer was written (${h.size} -> ${body.length} bytes)`);
          await tar.add(h, body);
        } else if (pending) {
          ahead.delete(i);
          aheadBytes -= e.size ?? 0;
          const body = await pending;
          if (body.length !== h.size)
            throw new StevedoreError('SOURCE_CHANGED', `${e.source} changed size while the layer was written (${h.size} -> ${body.length} bytes)`);
          await tar.add(h, body);
        } else if ((e.size ?? 0) === 0) await tar.add(h);
        else await tar.add(h, createReadStream(e.source));
      } else {
        await tar.add(h);
      }
    }
    tar.finalize();
    await writing;
  } catch (err) {
    tar.destroy(err as Error);
    await writing.catch(() => undefined);
    await rm(tmp, { force: true });
    if (err instanceof StevedoreError || (err instanceof Error && err.name === 'AbortError')) throw err;
    throw new StevedoreError('LAYER_WRITE_FAILED', `writing layer in ${opts.workDir}: ${errorMessage(err)}`, { cause: err });
  }
  const digest = (compress ? blob.digest : diff.digest) as Digest;
  const path = join(opts.workDir, `${digestHex(digest)}${compress ? '.tar.gz' : '.tar'}`);
  await rename(tmp, path);
  const layer: LayerFile = {
    path,
    digest,
    diffID: diff.digest as string,
    size: compress ? blob.bytes : diff.bytes,
    mediaType: compress ? LAYER_MEDIA_TYPE : MediaType.OciLayer,
    empty: sorted.length === 0,
  };
  log.debug({ digest, entries: sorted.length, bytes: layer.size, tarBytes: diff.bytes, ms: Date.now() - started }, 'layer written');
  return layer;
}
