/**
 * The index of a natively built multi-platform image: once every platform's Pod has pushed its
 * image, the controller checks each one is in the output repository (HEAD, by digest) and puts an
 * index naming them, with their platforms, under the output tag. Nothing is pulled: the registry
 * already holds every blob.
 */
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import { encodeManifest, type ImageIndex } from '../oci/manifest.js';
import { MediaType, IMAGE_MANIFEST_TYPES } from '../oci/mediatype.js';
import { parsePlatform } from '../oci/platform.js';
import { parseReference, referenceTarget } from '../oci/reference.js';
import { headManifest, putManifest } from '../registry/manifests.js';
import { registryClientFor } from '../transports/docker.js';
import type { TransportContext } from '../transports/types.js';
import { NotFoundError } from '../util/errors.js';

export interface PlatformDigest {
  platform: string;
  digest: string;
}

/** Writes the index of `images` under `outputImage`; returns its digest and the bytes it names. */
export async function assembleIndex(
  outputImage: string,
  images: readonly PlatformDigest[],
  ctx: TransportContext,
  signal?: AbortSignal,
): Promise<{ digest: Digest; size: number }> {
  const ref = parseReference(outputImage);
  const client = registryClientFor(ref, ctx);
  try {
    const manifests: Descriptor[] = [];
    for (const img of images) {
      const head = await headManifest(client, ref.repository, img.digest, { signal });
      if (!head) throw new NotFoundError(`${ref.registry}/${ref.repository} does not hold ${img.digest}, the ${img.platform} image its build Pod reported`);
      if (!IMAGE_MANIFEST_TYPES.includes(head.mediaType)) {
        throw new NotFoundError(
          `${ref.registry}/${ref.repository}@${img.digest} (${img.platform}) is a ${head.mediaType || 'manifest of unknown type'}, not an image manifest`,
        );
      }
      manifests.push({ mediaType: head.mediaType, digest: head.digest, size: head.size, platform: parsePlatform(img.platform) });
    }
    // Docker schema 2 children go in a Docker manifest list, OCI ones in an OCI index.
    const docker = manifests.every((m) => m.mediaType === MediaType.DockerManifest);
    const doc: ImageIndex = { schemaVersion: 2, mediaType: docker ? MediaType.DockerManifestList : MediaType.OciIndex, manifests };
    const raw = encodeManifest(doc);
    await putManifest(client, ref.repository, referenceTarget(ref), raw, { signal });
    return { digest: raw.digest, size: raw.bytes.length };
  } finally {
    await client.close();
  }
}
