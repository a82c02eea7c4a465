import { pipeline, type Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { AUFS_META_PREFIX, compressionForMediaType, OPAQUE_WHITEOUT, openDecompressed, WHITEOUT_PREFIX } from '../runtime/unpack/index.js';
import { StevedoreError, errorMessage } from '../util/errors.js';

/** One tar entry, reduced to what the catalogers look at. Paths are cleaned and relative to `/`. */
export type WalkEntry =
  | { kind: 'file'; path: string; mode: number; size: number }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'directory' | 'other'; path: string }
  /** Deletes `path` (and everything below it) from lower layers. */
  | { kind: 'whiteout'; path: string }
  /** Hides everything lower layers have below the directory `path` (the root is `''`). */
  | { kind: 'opaque'; path: string };

type TarEntry = AsyncIterable<Buffer> & { header: tar.Header; resume(): unknown };

/** Lexical clean-up of a tar name; `..` cannot climb above the root (as the unpacker reads it). */
export function cleanPath(name: string): string {
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out.join('/');
}

function classify(h: tar.Header): WalkEntry | undefined {
  const path = cleanPath(h.name);
  const slash = path.lastIndexOf('/');
  const base = path.slice(slash + 1);
  const dir = slash < 0 ? '' : path.slice(0, slash);
  if (base === OPAQUE_WHITEOUT) return { kind: 'opaque', path: dir };
  if (base.startsWith(AUFS_META_PREFIX) || path.startsWith(AUFS_META_PREFIX)) return undefined;
  if (base.startsWith(WHITEOUT_PREFIX)) {
    const name = base.slice(WHITEOUT_PREFIX.length);
    if (name === '' || name === '.' || name === '..') return undefined;
    return { kind: 'whiteout', path: dir === '' ? name : `${dir}/${name}` };
  }
  if (path === '') return { kind: 'directory', path };
  switch (h.type) {
    case 'file':
    case 'contiguous-file':
      return { kind: 'file', path, mode: h.mode ?? 0, size: h.size ?? 0 };
    case 'directory':
      return { kind: 'directory', path };
    case 'symlink':
      return { kind: 'symlink', path, target: h.linkname ?? '' };
    default:
      return { kind: 'other', path };
  }
}

/** Waits until the (streamx) parser wants more, or fails if it is torn down meanwhile. */
function drained(w: tar.Extract): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = (): void => {
      w.off('close', onClose);
      resolve();
    };
    const onClose = (): void => {
      w.off('drain', onDrain);
      reject(new Error('tar parser closed'));
    };
    w.once('drain', onDrain);
    w.once('close', onClose);
  });
}

/**
 * Reads one layer (tar, tar+gzip or tar+zstd) as a stream, never whole: each entry is handed to
 * `visit` with its data, which the visitor may read (only the files it cares about) or leave; what
 * it leaves is skipped without being kept. The first error of the source, the decompressor, the
 * tar parser or the visitor ends the walk and is what the call rejects with.
 */
export async function walkLayer(
  layer: Readable,
  mediaType: string,
  visit: (entry: WalkEntry, data: AsyncIterable<Buffer>) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  signal?.throwIfAborted();
  const extract = tar.extract();
  let failure: unknown;
  let failed = false;
  const fail = (err: unknown): void => {
    if (failed) return;
    failed = true;
    failure = err;
    layer.destroy();
    extract.destroy(err instanceof Error ? err : new Error(String(err)));
  };
  extract.on('error', (err: Error) => fail(err));
  const onAbort = (): void => fail(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const { source, decompressor } = await openDecompressed(layer, compressionForMediaType(mediaType));
    const stages: NodeJS.ReadWriteStream[] = decompressor ? [decompressor] : [];
    const last = (stages.length > 0 ? stages[stages.length - 1] : source) as Readable;
    const flowed = new Promise<void>((resolve) => {
      if (stages.length === 0) return resolve();
      pipeline([source, ...stages], (err) => {
        if (err) fail(err);
        resolve();
      });
    });
    // Fed by hand: the parser is a streamx writable, and its errors must reach fail().
    const fed = (async () => {
      try {
        for await (const chunk of last) {
          if (!extract.write(chunk as Buffer)) await drained(extract);
        }
        (extract as unknown as { end(): void }).end();
      } catch (err) {
        fail(err);
      }
    })();
    const iterator = (extract as unknown as AsyncIterable<TarEntry>)[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<TarEntry>;
      try {
        next = await iterator.next();
      } catch (err) {
        fail(err);
        break;
      }
      if (next.done) break;
      const data = next.value;
      const entry = classify(data.header);
      try {
        if (entry) await visit(entry, data);
        // Whatever the visitor did not read is drained here.
        for await (const _ of data) void _;
      } catch (err) {
        fail(err);
        break;
      }
    }
    await Promise.all([fed, flowed]);
    if (failed) throw failure;
  } catch (err) {
    fail(err);
    if (failure instanceof StevedoreError || (failure instanceof Error && failure.name === 'AbortError')) throw failure;
    throw new StevedoreError('SBOM_LAYER_READ_FAILED', `reading layer: ${errorMessage(failure)}`, { cause: failure });
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
