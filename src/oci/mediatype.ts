/** Media types of the OCI image spec and of Docker's image manifest v2 schema 2. */
export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciLayer: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OciLayerNonDistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  OciLayerNonDistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  OciEmpty: 'application/vnd.oci.empty.v1+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  /** Uncompressed Docker layer: what a local build keeps (buildah and Docker's own stores do too). */
  DockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerLayerForeignGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  DockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  DockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
} as const;

export type KnownMediaType = (typeof MediaType)[keyof typeof MediaType];

export const IMAGE_MANIFEST_TYPES: readonly string[] = [MediaType.OciManifest, MediaType.DockerManifest];
export const INDEX_TYPES: readonly string[] = [MediaType.OciIndex, MediaType.DockerManifestList];
export const MANIFEST_TYPES: readonly string[] = [...IMAGE_MANIFEST_TYPES, ...INDEX_TYPES];

/** The Accept header a client sends so a registry may answer with any manifest we understand. */
export const MANIFEST_ACCEPT = MANIFEST_TYPES.join(', ');

export function isIndexMediaType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && INDEX_TYPES.includes(mediaType);
}

export function isImageManifestMediaType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && IMAGE_MANIFEST_TYPES.includes(mediaType);
}

export function isManifestMediaType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && MANIFEST_TYPES.includes(mediaType);
}

/** Layer compression as told by its media type; unknown types are treated as opaque blobs. */
export function layerCompression(mediaType: string): 'gzip' | 'zstd' | 'none' | 'unknown' {
  if (mediaType.endsWith('+gzip') || mediaType.endsWith('.tar.gzip')) return 'gzip';
  if (mediaType.endsWith('+zstd')) return 'zstd';
  if (mediaType.endsWith('.tar')) return 'none';
  return 'unknown';
}
