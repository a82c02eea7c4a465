import { createReadStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isDeepStrictEqual } from 'node:util';
import type { Descriptor } from '../../oci/descriptor.js';
import { VerifyingStream, type Digest } from '../../oci/digest.js';
import type { OciLayout } from '../../oci/layout.js';
import {
  convertLayerToFile,
  layerCompressor,
  layerMediaType,
  type ConvertedLayer,
  type LayerCompression,
  type LayerEncoder,
} from '../../oci/layer-compression.js';
import { layerCompression } from '../../oci/mediatype.js';
import { InvalidInputError, NotFoundError } from '../../util/errors.js';
import { rootLogger } from '../../util/log.js';
import { BlobInfoCache } from '../cache/blob-info.js';
import type { BuiltLayer } from '../executor/state.js';
import { GZIP_BLOCK, ParallelGzip } from '../layers/parallel-gzip.js';

const log = rootLogger.child({ component: 'build-compress' });

/**
 * gzip level of every layer the builder sends out. With ParallelGzip's fixed block size, the same
 * tar always gives the same bytes, so pushed digests are reproducible (--timestamp).
 */
export const PUSH_GZIP_LEVEL = 6;
/** zstd level of layers sent with `--compression-format zstd` (zstd's default; one thread, so the bytes are reproducible). */
export const PUSH_ZSTD_LEVEL = 3;

/**
 * How layers that leave the machine are compressed (`--compression-format`). `zstd:chunked` is
 * zstd with a table of contents (oci/zstd-chunked.ts) whose positions go on the layer descriptor
 * as annotations, so podman >= 5 can pull only the files it lacks.
 */
export type CompressionFormat = Exclude<LayerCompression, 'none'>;

/** The blob-info cache's variant: the same tar compressed another way is another blob. */
function variantOf(format: CompressionFormat): string {
  if (format === 'zstd:chunked') return `zstd-chunked-${PUSH_ZSTD_LEVEL}`;
  return format === 'zstd' ? `zstd-${PUSH_ZSTD_LEVEL}` : `pgzip-${PUSH_GZIP_LEVEL}-${GZIP_BLOCK}`;
}

/**
 * How the builder writes gzip and zstd (oci/layer-compression.ts): gzip on several cores in fixed
 * blocks, zstd in fixed pieces, so the same tar always gives the same blob.
 */
function encoderOf(format: CompressionFormat): LayerEncoder {
  return { level: format === 'gzip' ? PUSH_GZIP_LEVEL : PUSH_ZSTD_LEVEL, gzip: (level) => new ParallelGzip({ ...(level === undefined ? {} : { level }) }) };
}

/**
 * Compresses the builder's layers when an image leaves the machine. The store keeps layers as
 * plain tars (digest = diffID), as buildah does: a cold build spends no CPU on gzip, and the local
 * image runs from them directly. A push, a layout or archive output and the registry cache get gzip
 * layers instead: each is compressed once, to a temp file (its digest is needed before the
 * manifest), and the digest is remembered per diffID (BlobInfoCache) so a later push of the same
 * layer only HEADs it. Layers that are already compressed (a base image's) pass through unchanged.
 */
export class LayerCompressor {
  readonly #layout: OciLayout;
  readonly #info: BlobInfoCache;
  readonly #tmpDir: string;
  /** One compression per layer however many destinations ask, by diffID. */
  readonly #pending = new Map<Digest, Promise<BuiltLayer>>();
  /** Compressed blobs of this run: digest → temp file. */
  readonly #files = new Map<Digest, string>();
  /** Compressed digests known from the blob-info cache: digest → the uncompressed layer to compress again (with the remembered annotations). */
  readonly #sources = new Map<Digest, BuiltLayer>();

  readonly #format: CompressionFormat;

  /** `cacheDir`: the build cache (`<store>/build-cache`); `tmpDir`: scratch space inside the store, removed by cleanup(). */
  constructor(layout: OciLayout, cacheDir: string, tmpDir: string, format: CompressionFormat = 'gzip') {
    this.#layout = layout;
    this.#format = format;
    this.#info = new BlobInfoCache(cacheDir, variantOf(format));
    this.#tmpDir = tmpDir;
  }

  /** The layer as it is sent: gzip for a plain tar of the store, unchanged otherwise. */
  compressed(layer: BuiltLayer, signal?: AbortSignal): Promise<BuiltLayer> {
    if (layerCompression(layer.mediaType) !== 'none') return Promise.resolve(layer);
    let p = this.#pending.get(layer.diffID);
    if (!p) {
      p = this.#compress(layer, signal);
      // A failure (an abort) is not remembered: a later caller tries again.
      p.catch(() => this.#pending.delete(layer.diffID));
      this.#pending.set(layer.diffID, p);
    }
    // The same bytes under the OCI or the Docker name, as the caller's layer has it.
    const mediaType = layerMediaType(layer.mediaType, this.#format);
    return p.then((c) => (c.mediaType === mediaType ? c : { ...c, mediaType }));
  }

  async #compress(layer: BuiltLayer, signal?: AbortSignal): Promise<BuiltLayer> {
    const mediaType = layerMediaType(layer.mediaType, this.#format);
    const known = await this.#info.get(layer.diffID);
    // A zstd:chunked record without its TOC positions is no record: the descriptor needs them.
    if (known && (this.#format !== 'zstd:chunked' || known.annotations)) {
      if (!(await this.#layout.hasBlob(known.digest, known.size)))
        this.#sources.set(known.digest, known.annotations ? { ...layer, annotations: known.annotations } : layer);
      return { mediaType, digest: known.digest, size: known.size, diffID: layer.diffID, ...(known.annotations ? { annotations: known.annotations } : {}) };
    }
    const started = Date.now();
    const made = await this.#write(layer, signal);
    this.#files.set(made.digest, made.path);
    const annotations = made.annotations ? { annotations: made.annotations } : {};
    await this.#info.put(layer.diffID, { digest: made.digest, size: made.size, ...annotations });
    log.debug(
      { diffID: layer.diffID, digest: made.digest, format: this.#format, bytes: layer.size, compressed: made.size, ms: Date.now() - started },
      'layer compressed',
    );
    return { mediaType, digest: made.digest, size: made.size, diffID: layer.diffID, ...annotations };
  }

  /**
   * The layer's plain tar from the store, compressed into a file of the scratch directory named for
   * its digest (a zstd:chunked one with its TOC positions as annotations). The tar read must be the
   * layer's (its diffID).
   */
  async #write(layer: BuiltLayer, signal?: AbortSignal): Promise<ConvertedLayer> {
    await mkdir(this.#tmpDir, { recursive: true });
    return convertLayerToFile(await this.#layout.openBlob(layer), this.#tmpDir, {
      from: 'none',
      to: this.#format,
      ...encoderOf(this.#format),
      what: `layer ${layer.diffID}`,
      diffID: layer.diffID,
      ...(signal ? { signal } : {}),
    });
  }

  /**
   * A blob of an image as it is sent, verified as it is read: a compressed layer of this run from
   * its temp file, one known from the blob-info cache compressed again from the store's plain tar,
   * anything else (configs, manifests, base image layers, plain tars) from the store's layout.
   */
  async open(desc: Pick<Descriptor, 'digest' | 'size'>, signal?: AbortSignal): Promise<Readable> {
    const file = this.#files.get(desc.digest);
    const verify = (): VerifyingStream => new VerifyingStream({ expected: desc.digest, size: desc.size, what: `compressed layer ${desc.digest}` });
    if (file) return pipe(createReadStream(file), verify(), signal);
    const source = this.#sources.get(desc.digest);
    if (source && !(await this.#layout.hasBlob(desc.digest, desc.size))) {
      if (this.#format === 'zstd:chunked') {
        // Written to a file again (same level, same tar: the same bytes), then sent verified.
        const made = await this.#write(source, signal);
        this.#files.set(made.digest, made.path);
        // Same bytes, same TOC: annotations that differ from the remembered ones were not made here.
        if (made.digest === desc.digest && !isDeepStrictEqual(made.annotations ?? {}, source.annotations ?? {})) {
          throw new InvalidInputError(
            `blob-info record of layer ${source.diffID} (${desc.digest}): its zstd:chunked annotations do not match the blob's table of contents`,
          );
        }
        return pipe(createReadStream(made.path), verify(), signal);
      }
      const compressor = layerCompressor(this.#format, encoderOf(this.#format));
      pipeline(await this.#layout.openBlob(source), compressor).catch(() => undefined); // errors reach the reader through the compressor
      return pipe(compressor, verify(), signal);
    }
    if (!(await this.#layout.hasBlob(desc.digest))) throw new NotFoundError(`blob ${desc.digest} is neither in the store nor a layer this build compressed`);
    return this.#layout.openBlob(desc);
  }

  /** Removes this run's compressed temp files (the blob-info cache stays). */
  async cleanup(): Promise<void> {
    await rm(this.#tmpDir, { recursive: true, force: true });
    this.#files.clear();
  }
}

/**
 * `from` piped into `to`, which is returned for the caller to read: an error or abort on either side
 * (or `signal`) ends both, so a cancelled upload leaves no file open.
 */
function pipe(from: Readable, to: VerifyingStream, signal?: AbortSignal): Readable {
  pipeline(from, to, signal ? { signal } : {}).catch(() => undefined); // the error reaches the reader through `to`
  return to;
}
