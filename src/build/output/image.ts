import { InvalidInputError } from '../../util/errors.js';
import type { ContainerConfig, ImageConfig } from '../../oci/config.js';
import type { Descriptor } from '../../oci/descriptor.js';
import type { Digest } from '../../oci/digest.js';
import { encodeManifest, type ImageIndex, type ImageManifest } from '../../oci/manifest.js';
import type { Platform } from '../../oci/platform.js';
import { MediaType } from '../../oci/mediatype.js';
import type { OciLayout } from '../../oci/layout.js';
import { imageConfigOf, type StageState } from '../executor/state.js';

export type ImageFormat = 'oci' | 'docker';

export interface WrittenImage {
  /** For an index: each child manifest's digest → media type (the copy source serves them). */
  children?: ReadonlyMap<Digest, string>;
  digest: Digest;
  mediaType: string;
  manifestBytes: Buffer;
  config: ImageConfig;
  configDigest: Digest;
  /** Bytes of manifest + config + layers (what the result file reports). */
  size: number;
  descriptor: Descriptor;
}

export interface WriteImageOptions {
  format: ImageFormat;
  created: string;
  /** `--label`: added to the config's Labels (after the Containerfile's). */
  labels?: Record<string, string>;
  /** `--annotation`: on the manifest. */
  annotations?: Record<string, string>;
  /** `--env K=V` (buildah's): set in the config's Env, after the Containerfile's. */
  env?: Record<string, string>;
  /** `--unsetenv K` (buildah's): removed from the config's Env. */
  unsetEnv?: readonly string[];
  /** `--omit-history` (buildah's): the config records no history. */
  omitHistory?: boolean;
}

/** The Env list with `set` applied (replacing or appending, in order) and `unset` names removed. */
function editEnv(
  env: readonly string[] | null | undefined,
  set: Record<string, string> | undefined,
  unset: readonly string[] | undefined,
): string[] | undefined {
  if (!set && !unset?.length) return env ? [...env] : undefined;
  const name = (kv: string): string => (kv.includes('=') ? kv.slice(0, kv.indexOf('=')) : kv);
  let out = [...(env ?? [])];
  for (const [k, v] of Object.entries(set ?? {})) {
    const i = out.findIndex((kv) => name(kv) === k);
    if (i >= 0) out[i] = `${k}=${v}`;
    else out.push(`${k}=${v}`);
  }
  if (unset?.length) out = out.filter((kv) => !unset.includes(name(kv)));
  return out;
}

/** OCI and Docker layer media types carry the same bytes; only the name differs. */
function layerType(mediaType: string, format: ImageFormat): string {
  const gzip = mediaType.endsWith('gzip');
  if (format === 'docker') {
    if (gzip) return MediaType.DockerLayerGzip;
    if (mediaType === MediaType.OciLayer) return MediaType.DockerLayer;
    return mediaType;
  }
  if (mediaType === MediaType.DockerLayerGzip) return MediaType.OciLayerGzip;
  if (mediaType === MediaType.DockerLayer) return MediaType.OciLayer;
  return mediaType;
}

/**
 * Writes the config and manifest of a built stage into the store's layout (its layers are
 * already there) and returns the manifest. Nothing is tagged: the caller decides the names.
 */
export async function writeImage(layout: OciLayout, state: StageState, opts: WriteImageOptions): Promise<WrittenImage> {
  const config = imageConfigOf(state, opts.created);
  const runtime: ContainerConfig = { ...(config.config ?? {}) };
  if (opts.labels && Object.keys(opts.labels).length > 0) runtime.Labels = { ...(runtime.Labels ?? {}), ...opts.labels };
  const env = editEnv(runtime.Env, opts.env, opts.unsetEnv);
  if (env !== undefined) runtime.Env = env;
  config.config = runtime;
  if (opts.omitHistory) delete config.history;
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = await layout.writeBlobBytes(configBytes);
  const docker = opts.format === 'docker';
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: docker ? MediaType.DockerManifest : MediaType.OciManifest,
    config: { mediaType: docker ? MediaType.DockerConfig : MediaType.OciConfig, digest: configDigest, size: configBytes.length },
    layers: state.layers.map((l) => ({
      mediaType: layerType(l.mediaType, opts.format),
      digest: l.digest,
      size: l.size,
      ...(l.annotations && !docker ? { annotations: { ...l.annotations } } : {}),
    })),
  };
  if (opts.annotations && Object.keys(opts.annotations).length > 0) {
    if (docker) throw new InvalidInputError('--annotation needs --format oci (Docker manifests have no annotations)');
    manifest.annotations = { ...opts.annotations };
  }
  const raw = encodeManifest(manifest);
  await layout.writeBlobBytes(raw.bytes, raw.digest);
  const size = raw.bytes.length + configBytes.length + state.layers.reduce((n, l) => n + l.size, 0);
  return {
    digest: raw.digest,
    mediaType: raw.mediaType,
    manifestBytes: raw.bytes,
    config,
    configDigest,
    size,
    descriptor: { mediaType: raw.mediaType, digest: raw.digest, size: raw.bytes.length },
  };
}

/**
 * A multi-platform build's index (OCI index, or Docker manifest list with `--format docker`) over
 * the per-platform images, written into the store's layout next to them.
 */
export async function writeIndex(
  layout: OciLayout,
  images: readonly { image: WrittenImage; platform: Platform }[],
  opts: Pick<WriteImageOptions, 'format' | 'annotations'>,
): Promise<WrittenImage> {
  const docker = opts.format === 'docker';
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: docker ? MediaType.DockerManifestList : MediaType.OciIndex,
    manifests: images.map(({ image, platform }) => ({ ...image.descriptor, platform })),
  };
  if (!docker && opts.annotations && Object.keys(opts.annotations).length > 0) index.annotations = { ...opts.annotations };
  const raw = encodeManifest(index);
  await layout.writeBlobBytes(raw.bytes, raw.digest);
  return {
    digest: raw.digest,
    mediaType: raw.mediaType,
    manifestBytes: raw.bytes,
    // The index has no config of its own; the first image's stands in for callers that want one.
    config: images[0]!.image.config,
    configDigest: images[0]!.image.configDigest,
    size: raw.bytes.length + images.reduce((n, i) => n + i.image.size, 0),
    descriptor: { mediaType: raw.mediaType, digest: raw.digest, size: raw.bytes.length },
    children: new Map(images.map(({ image }) => [image.digest, image.mediaType])),
  };
}
