import { pipeline, type Readable } from 'node:stream';
import {
  AUFS_META_PREFIX,
  compressionForMediaType,
  OPAQUE_WHITEOUT,
  openDecompressed,
  UnsafeLayerEntryError,
  WHITEOUT_PREFIX,
} from '../runtime/unpack/index.js';
import { StevedoreError, errorMessage } from '../util/errors.js';
import { readTar, type TarHeader } from '../util/tar/read.js';

/** One tar entry, reduced to what the catalogers look at. Paths are cleaned and relative to `/`. */
export type WalkEntry =
  | { kind: 'file'; path: string; mode: number; size: number }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'directory' | 'other'; path: string }
  /** Deletes `path` (and everything below it) from lower layers. */
  | { kind: 'whiteout'; path: string }
  /** Hides everything lower layers have below the directory `path` (the root is `''`). */
  | { kind: 'opaque'; path: string };

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

function classify(h: TarHeader): WalkEntry | undefined {
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
  const onAbort = (): void => {
    layer.destroy(signal?.reason);
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const { source, decompressor } = await openDecompressed(layer, compressionForMediaType(mediaType));
    signal?.throwIfAborted();
    let tarBytes: Readable = source;
    if (decompressor) {
      tarBytes = decompressor;
      // Errors reach the reader through the decompressor, which the pipeline destroys with them.
      pipeline(source, decompressor, () => undefined);
    }
    await readTar(
      tarBytes,
      async (data) => {
        const entry = classify(data.header);
        if (entry) await visit(entry, data);
      },
      { signal, refuse: (name, reason) => new UnsafeLayerEntryError(name, reason), onFail: () => layer.destroy() },
    );
  } catch (err) {
    layer.destroy();
    if (err instanceof StevedoreError || (err instanceof Error && err.name === 'AbortError')) throw err;
    throw new StevedoreError('SBOM_LAYER_READ_FAILED', `reading layer: ${errorMessage(err)}`, { cause: err });
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
