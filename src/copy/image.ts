/**
 * The copy pipeline for one image or index between an ImageSource and an ImageDestination (see
 * copyImage). copy.ts adds what a copy by reference needs around it (policy, attachments).
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import { encodeManifest, parseManifest, type ImageIndex, type ImageManifest, type RawManifest } from '../oci/manifest.js';
import { isIndexMediaType, layerCompression, MediaType } from '../oci/mediatype.js';
import { formatPlatform, hostPlatform, platformMatches, type Platform } from '../oci/platform.js';
import { classifyError, DEFAULT_RETRY, withRetry, type RetryPolicy } from '../util/retry.js';
import { InvalidInputError, NotFoundError, StevedoreError, UnsupportedError } from '../util/errors.js';
import { rootLogger } from '../util/log.js';
import type { ImageDestination, ImageSource } from '../transports/types.js';
import { convertImageManifest, convertIndex, formatOf, type ManifestFormat } from './convert.js';
import { ProgressMeter, type ProgressListener } from './progress.js';
import { Limiter } from '../util/pool.js';
import { isZstdChunked, withoutZstdChunked } from '../oci/zstd-chunked-format.js';
import { convertLayerToFile, layerMediaType, type LayerCompression } from '../oci/layer-compression.js';

/** Blobs transferred in parallel unless `jobs` says otherwise (skopeo and the CLI's `--jobs` default). */
export const DEFAULT_COPY_JOBS = 6;

export interface CopyOptions {
  /**
   * Runs after every manifest is written and before the destination's commit(): what must land in
   * the same commit (an archive's attachments, copy/layout-attachments.ts) is written here.
   */
  beforeCommit?: (result: CopyResult) => Promise<void>;
  /** Copy every image of an index (skopeo's `--all`). */
  all?: boolean;
  /** Copy these platforms of an index; without `all` or this, the host's platform is chosen. */
  platforms?: Platform[];
  /** Fail rather than write anything whose digest differs from the source's. */
  preserveDigests?: boolean;
  /** Manifest format at the destination; default: as the source has it. */
  format?: ManifestFormat;
  /** Blobs transferred in parallel; default DEFAULT_COPY_JOBS. */
  jobs?: number;
  /** Attempts per blob; a broken transfer restarts (the source side also resumes by Range). Default: retry.attempts, else 3. */
  blobAttempts?: number;
  /** Retry policy of blob transfers (skopeo's --retry-times/--retry-delay); registry requests take theirs from the TransportContext. */
  retry?: Partial<RetryPolicy>;
  /**
   * Layer compression at the destination (skopeo's --dest-compress-format): every tar layer is
   * converted to it (decompressed and compressed again; the diffIDs stay, the digests change).
   * Default: as the source has them, except that a destination wanting compressed layers (a
   * registry) gets uncompressed ones gzip-compressed.
   */
  compression?: LayerCompression;
  /** zlib/zstd level for `compression` (gzip 1-9, zstd 1-22). */
  compressionLevel?: number;
  /**
   * A platform subset of an index is written as an index (even of one platform), annotated with the
   * source index's digest and the platforms chosen (SUBSET_SOURCE_ANNOTATION, SUBSET_PLATFORMS_ANNOTATION),
   * so a later sync can tell it is unchanged from a HEAD of the source and the destination's own
   * manifest. Without it one platform is written as that platform's image, as skopeo does.
   */
  recordSubset?: boolean;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

/** What was carried: the tags (`sha256-<hex>.sig` ...) and referrer manifests written at the destination. */
export interface AttachmentsCopied {
  tags: string[];
  referrers: Digest[];
}

export interface CopyResult {
  /** Digest of the top manifest written at the destination. */
  digest: Digest;
  mediaType: string;
  /** Platforms copied, for an index. */
  platforms: string[];
  blobsCopied: number;
  blobsReused: number;
  bytesCopied: number;
  manifests: number;
  /** Signatures, attestations, SBOMs and referrers carried along (registry to registry). */
  attachments?: AttachmentsCopied;
  /**
   * The top manifest as written (bytes, media type, digest), so a caller can tag it again without
   * reading it back (sync tags every further tag of one digest with it).
   */
  manifest: RawManifest;
}

const MAX_INDEX_DEPTH = 4;

/** The digest of the source index a platform subset was taken from (see CopyOptions.recordSubset). */
export const SUBSET_SOURCE_ANNOTATION = 'dev.stevedore.mirror.source-digest';
/** The platforms of that subset, as subsetPlatforms() writes them. */
export const SUBSET_PLATFORMS_ANNOTATION = 'dev.stevedore.mirror.platforms';
/**
 * With recordSubset, a top manifest whose layers were converted (CopyOptions.compression) is
 * annotated with the source digest (SUBSET_SOURCE_ANNOTATION) and this, the compression: a later
 * sync tells from the destination's own manifest that it is unchanged.
 */
export const CONVERTED_COMPRESSION_ANNOTATION = 'dev.stevedore.mirror.compression';

/** Platforms as one canonical string (sorted, comma-separated), for the subset annotation. */
export function subsetPlatforms(platforms: readonly Platform[]): string {
  return [...new Set(platforms.map(formatPlatform))].sort().join(',');
}

/** A blob stream that counts what it has delivered (BlobReader, VerifyingStream). */
type CountingStream = Readable & { readonly bytes: number };

interface CopyState {
  src: ImageSource;
  dest: ImageDestination;
  opts: CopyOptions;
  /** One transfer per digest even when several images share a blob. */
  blobs: Map<Digest, Promise<void>>;
  /** Layers converted to another compression for the destination, by source digest. */
  compressed: Map<Digest, Promise<Descriptor>>;
  /** Shared by every image of one copy, so `jobs` bounds the whole operation. */
  limiter: Limiter;
  result: CopyResult;
}

/**
 * Copies an image or an index from a source to a destination, in containers/image's order: every
 * blob first (reused when the destination has it or can mount it, else streamed straight from
 * source to destination, verified on the way), then child manifests, then the top manifest, then
 * commit. An interrupted copy therefore never leaves a manifest whose blobs are missing, and a rerun
 * skips what already arrived.
 */
export async function copyImage(src: ImageSource, dest: ImageDestination, opts: CopyOptions = {}): Promise<CopyResult> {
  const top = await src.getManifest(undefined, { signal: opts.signal });
  const state: CopyState = {
    src,
    dest,
    opts,
    blobs: new Map(),
    compressed: new Map(),
    limiter: new Limiter(opts.jobs ?? DEFAULT_COPY_JOBS),
    result: { digest: top.digest, mediaType: top.mediaType, platforms: [], blobsCopied: 0, blobsReused: 0, bytesCopied: 0, manifests: 0, manifest: top },
  };
  const written = await copyManifest(state, top, true, 0);
  state.result.digest = written.digest;
  state.result.mediaType = written.mediaType;
  state.result.manifest = written;
  await opts.beforeCommit?.(state.result);
  await dest.commit({ signal: opts.signal });
  return state.result;
}

async function copyManifest(state: CopyState, raw: RawManifest, isTop: boolean, depth: number): Promise<RawManifest> {
  const parsed = parseManifest(raw.bytes, raw.mediaType);
  if (parsed.kind === 'index') {
    if (depth >= MAX_INDEX_DEPTH) throw new UnsupportedError(`index nesting deeper than ${MAX_INDEX_DEPTH} levels`);
    return copyIndex(state, raw, parsed.index, isTop, depth);
  }
  return copySingleImage(state, raw, parsed.manifest, isTop);
}

/** Picks the children of an index to copy: all, the wanted platforms, or the host's. */
function selectChildren(index: ImageIndex, opts: CopyOptions, name: string): { children: Descriptor[]; single: boolean } {
  if (opts.all) return { children: index.manifests, single: false };
  const wanted = opts.platforms && opts.platforms.length > 0 ? opts.platforms : [hostPlatform()];
  const children: Descriptor[] = [];
  for (const p of wanted) {
    const hit = index.manifests.find((m) => !isIndexMediaType(m.mediaType) && platformMatches(m.platform, p));
    if (!hit) {
      const have = index.manifests.map((m) => (m.platform ? formatPlatform(m.platform) : 'unknown')).join(', ');
      throw new NotFoundError(`${name} has no image for platform ${formatPlatform(p)} (it has: ${have || 'none'})`);
    }
    if (!children.includes(hit)) children.push(hit);
  }
  // One platform asked for implicitly or explicitly: copy that image alone, as skopeo does.
  return { children, single: children.length === 1 && !(opts.platforms && opts.platforms.length > 1) };
}

async function copyIndex(state: CopyState, raw: RawManifest, index: ImageIndex, isTop: boolean, depth: number): Promise<RawManifest> {
  const { src, dest, opts } = state;
  const { children, single } = selectChildren(index, opts, src.name);
  if (single && isTop && !opts.recordSubset) {
    if (opts.preserveDigests) {
      throw new InvalidInputError(`--preserve-digests: copying one platform of ${src.name} would change the top digest; use --all`);
    }
    const child = await src.getManifest(children[0]!.digest, { signal: opts.signal });
    if (children[0]!.platform) state.result.platforms.push(formatPlatform(children[0]!.platform));
    return copyManifest(state, child, true, depth + 1);
  }
  const written = await Promise.all(
    children.map(async (d) => {
      const child = await src.getManifest(d.digest, { signal: opts.signal });
      const out = await copyManifest(state, child, false, depth + 1);
      if (d.platform) state.result.platforms.push(formatPlatform(d.platform));
      const desc: Descriptor = { ...d, mediaType: out.mediaType, digest: out.digest, size: out.bytes.length };
      return desc;
    }),
  );
  const unchanged = written.every((d, i) => d.digest === children[i]!.digest) && children.length === index.manifests.length;
  let out: RawManifest = raw;
  const want = targetFormat(state, raw.mediaType);
  if (!unchanged || want !== formatOf(raw.mediaType)) {
    if (opts.preserveDigests) {
      throw new InvalidInputError(
        `--preserve-digests: the index of ${src.name} would be rewritten (subset of platforms or format change); use --all without --format`,
      );
    }
    // What a later sync compares (recordSubset): the source index, and the platform subset and layer compression chosen.
    let subset: Record<string, string> | undefined;
    if (opts.recordSubset && isTop) {
      if (children.length !== index.manifests.length) {
        subset = { [SUBSET_SOURCE_ANNOTATION]: raw.digest, [SUBSET_PLATFORMS_ANNOTATION]: subsetPlatforms(opts.platforms ?? [hostPlatform()]) };
      }
      if (opts.compression) subset = { ...subset, [SUBSET_SOURCE_ANNOTATION]: raw.digest, [CONVERTED_COMPRESSION_ANNOTATION]: opts.compression };
    }
    out = want
      ? convertIndex(index, written, want, subset)
      : encodeManifest({ ...index, manifests: written, ...(subset ? { annotations: { ...(index.annotations ?? {}), ...subset } } : {}) });
  }
  checkSupported(dest, out.mediaType);
  await dest.putManifest(out, { top: isTop, signal: opts.signal });
  state.result.manifests++;
  opts.onProgress?.({ type: 'manifest', digest: out.digest, mediaType: out.mediaType, top: isTop });
  return out;
}

function targetFormat(state: CopyState, mediaType: string): ManifestFormat | undefined {
  if (state.opts.format) return state.opts.format;
  const supported = state.dest.supportedManifestTypes;
  const have = formatOf(mediaType);
  if (!supported || supported.includes(mediaType) || !have) return have;
  return have === 'oci' ? 'v2s2' : 'oci';
}

function checkSupported(dest: ImageDestination, mediaType: string): void {
  const supported = dest.supportedManifestTypes;
  if (supported && !supported.includes(mediaType)) {
    throw new UnsupportedError(`${dest.name} cannot store ${mediaType}${isIndexMediaType(mediaType) ? '; choose one platform with --platform' : ''}`);
  }
}

/** What a layer becomes at this destination: undefined to copy it as it is. */
function layerTarget(state: CopyState, desc: Descriptor): LayerCompression | undefined {
  const have = layerCompression(desc.mediaType);
  if (have === 'unknown') return undefined; // not a tar layer (signatures, attestations, foreign types)
  const want = state.opts.compression ?? (state.dest.desiredLayerCompression === 'compress' && have === 'none' ? 'gzip' : undefined);
  if (want === 'zstd:chunked') return have === 'zstd' && isZstdChunked(desc) ? undefined : want;
  return want === undefined || want === have ? undefined : want;
}

async function copySingleImage(state: CopyState, raw: RawManifest, manifest: ImageManifest, isTop: boolean): Promise<RawManifest> {
  const { dest, opts } = state;
  let want = targetFormat(state, raw.mediaType);
  // Each layer's target compression (undefined: copied as it is), decided once.
  const targets = manifest.layers.map((l) => layerTarget(state, l));
  const compress = targets.some((t) => t !== undefined);
  if (compress && opts.preserveDigests) {
    throw new InvalidInputError(
      `--preserve-digests: ${state.src.name} would have layers ${opts.compression ? `converted to ${opts.compression}` : 'gzip-compressed (they are uncompressed)'} at ${dest.name}: the digest would change`,
    );
  }
  if (targets.some((t) => t?.startsWith('zstd')) && formatOf(raw.mediaType) === 'v2s2') {
    // Docker schema 2 has no zstd layer type: the image becomes an OCI one.
    if (opts.format === 'v2s2') throw new InvalidInputError('zstd layers need OCI manifests: Docker schema 2 (--format v2s2) has no zstd layer type');
    want = 'oci';
  }
  if (want && want !== formatOf(raw.mediaType) && opts.preserveDigests) {
    throw new InvalidInputError(`--preserve-digests: converting ${state.src.name} to ${want} would change its digest`);
  }
  // Refused before any blob is written: the manifest type this destination would get.
  checkSupported(dest, want && want !== formatOf(raw.mediaType) ? (want === 'oci' ? MediaType.OciManifest : MediaType.DockerManifest) : raw.mediaType);
  const [, ...layers] = await Promise.all([
    copyBlobOnce(state, manifest.config),
    ...manifest.layers.map((desc, i) => {
      const to = targets[i];
      return to ? convertLayerOnce(state, desc, to) : copyBlobOnce(state, desc).then(() => desc);
    }),
  ]);
  const sent: ImageManifest = compress ? { ...manifest, layers } : manifest;
  if (compress && isTop && opts.recordSubset && opts.compression) {
    sent.annotations = { ...(manifest.annotations ?? {}), [SUBSET_SOURCE_ANNOTATION]: raw.digest, [CONVERTED_COMPRESSION_ANNOTATION]: opts.compression };
  }
  let out = raw;
  if (want && want !== formatOf(raw.mediaType)) out = convertImageManifest(sent, want);
  else if (compress) out = encodeManifest(sent);
  checkSupported(dest, out.mediaType);
  await dest.putManifest(out, { top: isTop, signal: opts.signal });
  state.result.manifests++;
  opts.onProgress?.({ type: 'manifest', digest: out.digest, mediaType: out.mediaType, top: isTop });
  return out;
}

/**
 * A layer converted to another compression once per copy, into a temp file (its digest is needed
 * before the upload). The uncompressed bytes, and so the diffID in the config, stay the same.
 */
function convertLayerOnce(state: CopyState, desc: Descriptor, to: LayerCompression): Promise<Descriptor> {
  let p = state.compressed.get(desc.digest);
  if (!p) {
    p = state.limiter.run(() => convertLayer(state, desc, to));
    state.compressed.set(desc.digest, p);
  }
  return p;
}

/**
 * Converts the layer into a temp file (oci/layer-compression.ts), sends it (sendConverted) and
 * removes the file. Annotations of the source's own zstd:chunked TOC go (they describe another
 * blob); a zstd:chunked result brings its own.
 */
async function convertLayer(state: CopyState, desc: Descriptor, to: LayerCompression): Promise<Descriptor> {
  const { src, opts } = state;
  const from = layerCompression(desc.mediaType);
  if (from === 'unknown') throw new UnsupportedError(`layer ${desc.digest}: cannot convert ${desc.mediaType} (not a tar layer)`);
  const dir = await mkdtemp(join(tmpdir(), 'stevedore-layer-'));
  try {
    const made = await convertLayerToFile(await src.getBlob(desc, { signal: opts.signal }), dir, {
      from,
      to,
      ...(opts.compressionLevel === undefined ? {} : { level: opts.compressionLevel }),
      what: `layer ${desc.digest}`,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const kept = withoutZstdChunked(desc);
    const annotations = made.annotations ? { annotations: { ...(kept.annotations ?? {}), ...made.annotations } } : {};
    const out: Descriptor = { ...kept, mediaType: layerMediaType(desc.mediaType, to), digest: made.digest, size: made.size, ...annotations };
    return await sendConverted(state, out, made.path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Uploads a converted layer from its temp file, unless the destination has it or can mount it. */
async function sendConverted(state: CopyState, out: Descriptor, file: string): Promise<Descriptor> {
  const { src, dest, opts } = state;
  const signal = opts.signal;
  const size = out.size;
  if (await dest.tryReuseBlob(out, { from: src.location, signal })) {
    state.result.blobsReused++;
    opts.onProgress?.({ type: 'blob', phase: 'reused', digest: out.digest, size, mediaType: out.mediaType });
    return out;
  }
  opts.onProgress?.({ type: 'blob', phase: 'start', digest: out.digest, size, mediaType: out.mediaType });
  await dest.putBlob(out, createReadStream(file), { signal });
  state.result.blobsCopied++;
  state.result.bytesCopied += size;
  opts.onProgress?.({ type: 'blob', phase: 'done', digest: out.digest, size, bytes: size, ms: 0 });
  return out;
}

function copyBlobOnce(state: CopyState, desc: Descriptor): Promise<void> {
  let p = state.blobs.get(desc.digest);
  if (!p) {
    p = state.limiter.run(() => copyBlob(state, desc));
    state.blobs.set(desc.digest, p);
  }
  return p;
}

async function copyBlob(state: CopyState, desc: Descriptor): Promise<void> {
  const { src, dest, opts } = state;
  const signal = opts.signal;
  const emit = opts.onProgress;
  const log = rootLogger.child({ digest: desc.digest, size: desc.size });
  if (await dest.tryReuseBlob(desc, { from: src.location, signal })) {
    state.result.blobsReused++;
    emit?.({ type: 'blob', phase: 'reused', digest: desc.digest, size: desc.size, mediaType: desc.mediaType });
    return;
  }
  const policy = { ...DEFAULT_RETRY, ...(opts.retry ?? {}), attempts: opts.blobAttempts ?? opts.retry?.attempts ?? 3 };
  await withRetry(
    async () => {
      const started = Date.now();
      emit?.({ type: 'blob', phase: 'start', digest: desc.digest, size: desc.size, mediaType: desc.mediaType });
      const stream = await src.getBlob(desc, { signal });
      const progress = (bytes: number) => emit?.({ type: 'blob', phase: 'progress', digest: desc.digest, size: desc.size, bytes });
      if (!emit || typeof (stream as Partial<CountingStream>).bytes === 'number') {
        // A source stream that counts its bytes (registry blobs, layout files) is polled for
        // progress rather than passed through one more Transform per chunk.
        const timer = emit ? setInterval(() => progress((stream as CountingStream).bytes), 200) : undefined;
        // The source's own verdict (a digest mismatch found at its last byte) can come after the
        // destination has already answered and the upload stopped listening: keep it, and report
        // it rather than the destination's side of the same failure.
        let sourceError: Error | undefined;
        stream.on('error', (err) => (sourceError ??= err));
        try {
          await dest.putBlob(desc, stream, { signal });
        } catch (err) {
          throw sourceError instanceof StevedoreError ? sourceError : err;
        } finally {
          clearInterval(timer);
          stream.destroy();
        }
      } else {
        const meter = new ProgressMeter(progress);
        // pipeline propagates an error from either side (a digest mismatch in the source stream aborts
        // the upload), and the destination's putBlob consumes the meter.
        await Promise.all([pipeline(stream, meter).catch((err) => meter.destroy(err)), dest.putBlob(desc, meter, { signal })]);
      }
      state.result.blobsCopied++;
      state.result.bytesCopied += desc.size;
      const ms = Date.now() - started;
      log.debug({ ms }, 'blob copied');
      emit?.({ type: 'blob', phase: 'done', digest: desc.digest, size: desc.size, bytes: desc.size, ms });
    },
    policy,
    classifyError,
    signal,
    {
      what: `blob ${desc.digest}`,
      onRetry: ({ attempt, err }) => {
        emit?.({ type: 'blob', phase: 'retry', digest: desc.digest, size: desc.size, attempt: attempt + 1, error: (err as Error).message });
        log.info({ attempt: attempt + 1, err: (err as Error).message }, 'blob copy failed; retrying');
      },
    },
  );
}
