import { MediaType } from '../../oci/mediatype.js';

/**
 * A layer the builder produced: a tar on disk, gzip-compressed unless written with `compress: false`
 * (the executor keeps plain tars; see output/compress.ts), with the two digests an image needs (the
 * blob digest for the manifest, the diffID of the uncompressed tar for the config's rootfs).
 */
export interface LayerFile {
  /** The tar (or gzip tar) on disk. */
  path: string;
  /** sha256 of the bytes on disk (the blob digest; the diffID for a plain tar). */
  digest: string;
  /** sha256 of the uncompressed tar (the config's `rootfs.diff_ids` entry). */
  diffID: string;
  /** Size on disk in bytes. */
  size: number;
  mediaType: string;
  /** True when the tar holds no entries at all (an instruction that changed nothing). */
  empty: boolean;
}

export const LAYER_MEDIA_TYPE: string = MediaType.OciLayerGzip;
