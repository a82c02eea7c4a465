/**
 * Converting a layer from one compression to another (gzip, zstd, zstd:chunked, none), written
 * once for the builder's output (`build`/`push --compression-format`, build/output/compress.ts) and
 * the copy pipeline (`copy`/`sync --dest-compress-format`, ImageMirror; copy/image.ts). The
 * uncompressed tar, and so the diffID, stays; the blob's digest and size are new, and a
 * zstd:chunked blob comes with the TOC positions its descriptor must carry.
 */
import { rename, rm } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import type { Duplex, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { type Digest, digestHex, VerifyingStream } from './digest.js';
import { MediaType } from './mediatype.js';
import { createStableZstdCompress } from './zstd-compress.js';
import { createZstdFramesDecompress } from './zstd-frames.js';
import { DigestMismatchError, InvalidInputError } from '../util/errors.js';
import { tempSibling } from '../util/fs.js';

/** A tar layer's compression. `zstd:chunked` is zstd with a table of contents for partial pulls (zstd-chunked.ts). */
export type LayerCompression = 'gzip' | 'zstd' | 'zstd:chunked' | 'none';

/** The media type of a tar layer in `to` compression, in the family (OCI or Docker) of `mediaType`; Docker has no zstd type, so zstd is always OCI's. */
export function layerMediaType(mediaType: string, to: LayerCompression): string {
  const docker = mediaType.startsWith('application/vnd.docker.');
  if (to === 'zstd' || to === 'zstd:chunked') return MediaType.OciLayerZstd;
  if (to === 'gzip') return docker ? MediaType.DockerLayerGzip : MediaType.OciLayerGzip;
  return docker ? MediaType.DockerLayer : MediaType.OciLayer;
}

/** How gzip and zstd are written. */
export interface LayerEncoder {
  /** zlib level (gzip 1-9, zstd 1-22); each library's default without one. */
  level?: number;
  /**
   * The gzip compressor, in place of zlib's own (the builder's ParallelGzip: several cores, the
   * same bytes for the same tar). Both are deterministic; they make different bytes of one tar.
   */
  gzip?: (level: number | undefined) => Duplex;
}

/**
 * A stream compressor for gzip or zstd (zstd:chunked is written to a file: convertLayerToFile).
 * zstd is fed in fixed pieces (zstd-compress.ts), so the same layer always compresses to the same blob.
 */
export function layerCompressor(to: 'gzip' | 'zstd', encoder: LayerEncoder = {}): Duplex {
  const { level } = encoder;
  if (to === 'zstd') return createStableZstdCompress(level);
  return encoder.gzip ? encoder.gzip(level) : createGzip(level === undefined ? {} : { level });
}

export interface ConvertLayerOptions extends LayerEncoder {
  /** The compression of the blob read (layerCompression() of its media type). */
  from: 'gzip' | 'zstd' | 'none';
  to: LayerCompression;
  /** For messages: the layer (`layer sha256:...`). */
  what: string;
  /** The uncompressed tar's digest when known: a tar that is not it fails the conversion. */
  diffID?: Digest;
  signal?: AbortSignal;
}

/** A layer converted into a file of `dir` named for its digest. */
export interface ConvertedLayer {
  digest: Digest;
  size: number;
  path: string;
  /** zstd:chunked: the descriptor's TOC annotations (zstd-chunked-format.ts). */
  annotations?: Record<string, string>;
}

const EXTENSION: Record<LayerCompression, string> = { gzip: '.tar.gz', zstd: '.tar.zst', 'zstd:chunked': '.tar.zst', none: '.tar' };

/**
 * Reads `blob` (compressed as `from`) and writes it in `to` compression into `dir` (which must
 * exist), as `<hex of its digest><extension>`: the digest is known once the file is complete. The
 * file is written under a temp name and renamed when complete, so a failure or an abort leaves
 * nothing in `dir`; `blob` is destroyed either way. A broken compressed input is an error naming
 * `what`.
 */
export async function convertLayerToFile(blob: Readable, dir: string, opts: ConvertLayerOptions): Promise<ConvertedLayer> {
  const { to, what, signal } = opts;
  const tmp = tempSibling(join(dir, `layer${EXTENSION[to]}`));
  // Node's own zstd reader stops after the first frame (zstd:chunked has many): see zstd-frames.ts.
  const decompress = opts.from === 'gzip' ? createGunzip() : opts.from === 'zstd' ? createZstdFramesDecompress() : undefined;
  const options = signal ? { signal } : {};
  try {
    let made: Omit<ConvertedLayer, 'path'>;
    if (to === 'zstd:chunked') {
      // The writer (TOC, tar-split, CRC-64) loads only when zstd:chunked is asked for.
      const { writeZstdChunked } = await import('./zstd-chunked.js');
      const write = (tar: AsyncIterable<Buffer>) => writeZstdChunked(tar, tmp, { level: opts.level, what, ...options });
      const written = decompress ? await pipeline(blob, decompress, write, options) : await pipeline(blob, write, options);
      // Its writer hashes the tar it reads.
      if (opts.diffID && written.diffId !== opts.diffID) throw new DigestMismatchError(`${what}: uncompressed tar`, opts.diffID, written.diffId);
      made = { digest: written.digest, size: written.size, annotations: written.annotations };
    } else {
      const stages: Duplex[] = decompress ? [decompress] : [];
      // The tar checked as it goes by, before it is compressed.
      if (opts.diffID) stages.push(new VerifyingStream({ expected: opts.diffID, what: `${what}: uncompressed tar` }));
      if (to !== 'none') stages.push(layerCompressor(to, opts));
      const out = new VerifyingStream({});
      await pipeline([blob, ...stages, out, createWriteStream(tmp, { mode: 0o600 })], options);
      made = { digest: out.digest as Digest, size: out.bytes };
    }
    const path = join(dir, `${digestHex(made.digest)}${EXTENSION[to]}`);
    await rename(tmp, path);
    return { ...made, path };
  } catch (err) {
    blob.destroy();
    await rm(tmp, { force: true });
    // zlib's errors (a corrupt gzip) and the zstd frame reader's say nothing of which layer.
    const code = (err as { code?: unknown }).code;
    const unnamed = (typeof code === 'string' && code.startsWith('Z_')) || (err instanceof InvalidInputError && !err.message.startsWith(what));
    if (unnamed) throw new InvalidInputError(`${what}: ${(err as Error).message}`);
    throw err;
  }
}
