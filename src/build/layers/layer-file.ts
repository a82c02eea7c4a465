import { MediaType } from '../../oci/mediatype.js';

/**
 * A layer the builder produced: a gzip-compressed tar on disk, with the two digests an image needs
 * (the blob digest for the manifest, the diffID of the uncompressed tar for the config's rootfs).
 */
export interface LayerFile {
  /** The gzip tar on disk. */
  path: string;
  /** sha256 of the compressed bytes (the blob digest). */
  digest: string;
  /** sha256 of the uncompressed tar (the config's `rootfs.diff_ids` entry). */
  diffID: string;
  /** Compressed size in bytes. */
  size: number;
  mediaType: string;
  /** True when the tar holds no entries at all (an instruction that changed nothing). */
  empty: boolean;
}

export const LAYER_MEDIA_TYPE: string = MediaType.OciLayerGzip;
