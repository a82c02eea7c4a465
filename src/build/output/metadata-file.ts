import type { Descriptor } from '../../oci/descriptor.js';

/** One platform's image as it was sent (or stored), for `--metadata-file`. */
export interface PlatformImage {
  platform: string;
  descriptor: Pick<Descriptor, 'mediaType' | 'digest' | 'size'>;
  configDigest: string;
}

/** What `--metadata-file` records of a build. */
export interface BuildMetadataInput {
  image: { descriptor: Descriptor; size: number; configDigest: string };
  platformImages: PlatformImage[];
  /** The registry FROM images and their resolved digests, when the build resolved them. */
  execution?: { baseImages?: { name: string; digest: string }[] };
}

/**
 * The `--metadata-file` document: BuildKit's keys (`containerimage.digest`, `containerimage.descriptor`,
 * `containerimage.config.digest` for a single image, `image.name`), so scripts written for
 * `docker buildx build --metadata-file` read it, plus the total size and each platform's descriptor.
 * Unlike `--result-file` it has no size limit.
 */
export function buildMetadata(result: BuildMetadataInput, names: readonly string[]): Record<string, unknown> {
  const { mediaType, digest, size } = result.image.descriptor;
  const single = result.platformImages.length === 1;
  return {
    'containerimage.digest': digest,
    'containerimage.descriptor': { mediaType, digest, size },
    ...(single ? { 'containerimage.config.digest': result.image.configDigest } : {}),
    ...(names.length > 0 ? { 'image.name': names.join(',') } : {}),
    size: result.image.size,
    platforms: result.platformImages.map((p) => ({ platform: p.platform, ...p.descriptor, configDigest: p.configDigest })),
    ...(result.execution?.baseImages?.length ? { baseImages: result.execution.baseImages } : {}),
  };
}
