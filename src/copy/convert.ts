import type { Descriptor } from '../oci/descriptor.js';
import { encodeManifest, type ImageIndex, type ImageManifest, type RawManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatype.js';
import { UnsupportedError } from '../util/errors.js';

export type ManifestFormat = 'oci' | 'v2s2';

const TO_DOCKER: Record<string, string> = {
  [MediaType.OciConfig]: MediaType.DockerConfig,
  [MediaType.OciLayer]: MediaType.DockerLayer,
  [MediaType.OciLayerGzip]: MediaType.DockerLayerGzip,
  [MediaType.OciLayerNonDistributableGzip]: MediaType.DockerLayerForeignGzip,
  [MediaType.OciManifest]: MediaType.DockerManifest,
  [MediaType.OciIndex]: MediaType.DockerManifestList,
};
const TO_OCI: Record<string, string> = Object.fromEntries(Object.entries(TO_DOCKER).map(([k, v]) => [v, k]));

export function formatOf(mediaType: string): ManifestFormat | undefined {
  if (mediaType === MediaType.OciManifest || mediaType === MediaType.OciIndex) return 'oci';
  if (mediaType === MediaType.DockerManifest || mediaType === MediaType.DockerManifestList) return 'v2s2';
  return undefined;
}

function mapType(mediaType: string, to: ManifestFormat): string {
  const table = to === 'v2s2' ? TO_DOCKER : TO_OCI;
  if (to === 'v2s2' && Object.values(TO_DOCKER).includes(mediaType)) return mediaType;
  if (to === 'oci' && Object.values(TO_OCI).includes(mediaType)) return mediaType;
  const mapped = table[mediaType];
  if (!mapped) {
    throw new UnsupportedError(`cannot convert media type ${mediaType} to ${to === 'v2s2' ? 'Docker schema 2' : 'OCI'} (no equivalent)`);
  }
  return mapped;
}

function mapDescriptor(d: Descriptor, to: ManifestFormat): Descriptor {
  const out: Descriptor = { mediaType: mapType(d.mediaType, to), digest: d.digest, size: d.size };
  if (d.urls) out.urls = d.urls;
  if (to === 'oci' && d.annotations) out.annotations = d.annotations;
  if (d.platform) out.platform = d.platform;
  return out;
}

/**
 * Rewrites an image manifest between OCI and Docker schema 2. Blobs are untouched (the two formats
 * share config JSON and gzip tar layers), so only the manifest's digest changes. Docker schema 2 has
 * no annotations or subject; converting to it drops them, as skopeo does.
 */
export function convertImageManifest(m: ImageManifest, to: ManifestFormat): RawManifest {
  const out: ImageManifest = {
    schemaVersion: 2,
    mediaType: to === 'oci' ? MediaType.OciManifest : MediaType.DockerManifest,
    config: mapDescriptor(m.config, to),
    layers: m.layers.map((l) => mapDescriptor(l, to)),
  };
  if (to === 'oci') {
    if (m.subject) out.subject = m.subject;
    if (m.annotations) out.annotations = m.annotations;
  }
  return encodeManifest(out);
}

export function convertIndex(index: ImageIndex, children: Descriptor[], to: ManifestFormat, extraAnnotations?: Record<string, string>): RawManifest {
  const out: ImageIndex = {
    schemaVersion: 2,
    mediaType: to === 'oci' ? MediaType.OciIndex : MediaType.DockerManifestList,
    manifests: children.map((c) => mapDescriptor(c, to)),
  };
  if (to === 'oci' && index.annotations) out.annotations = index.annotations;
  if (extraAnnotations) out.annotations = { ...(out.annotations ?? {}), ...extraAnnotations };
  return encodeManifest(out);
}
