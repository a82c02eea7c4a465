import type { Digest } from '../../oci/digest.js';
import type { Compression, CompressionChoice } from './decompress.js';

/** One contiguous range of a user-namespace id map, in the OCI runtime spec's shape. */
export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

/** Maps the ids in a layer (container ids) to the ids written on disk (host ids). */
export interface IdMap {
  uidMappings: readonly IdMapping[];
  gidMappings: readonly IdMapping[];
}

export interface UnpackLimits {
  /** Tar entries, counting whiteouts and directories. Default 1,000,000. */
  maxEntries?: number;
  /** Uncompressed tar bytes (headers and padding included). Default 64 GiB. */
  maxBytes?: number;
}

export interface UnpackOptions {
  /** Compression of the stream; `auto` (the default) sniffs the first bytes. */
  compression?: CompressionChoice;
  /** The layer descriptor's media type; used when `compression` is not given. */
  mediaType?: string;
  /**
   * Do not try to chown (the caller is an unprivileged user outside any user namespace). Defaults
   * to true unless the process runs as uid 0, which includes root inside a user namespace.
   */
  rootless?: boolean;
  /** Translate the layer's uids/gids before writing them; an id outside the map aborts the unpack. */
  idMap?: IdMap;
  limits?: UnpackLimits;
  signal?: AbortSignal;
}

/** An entry the unpacker could not reproduce and left out on purpose; the unpack still succeeded. */
export interface SkippedEntry {
  path: string;
  type: 'character-device' | 'block-device' | 'fifo' | 'xattr' | 'aufs-metadata';
  reason: string;
}

export interface UnpackResult {
  /** Tar entries read (files, directories, links, whiteouts, skipped entries). */
  entries: number;
  /** Uncompressed tar bytes read. */
  bytes: number;
  /** sha256 of the uncompressed tar: the layer's diffID, to be checked against the image config. */
  diffID: Digest;
  compression: Compression;
  /** Whiteout and opaque markers applied. */
  whiteouts: number;
  skipped: SkippedEntry[];
}

export const DEFAULT_MAX_ENTRIES = 1_000_000;
export const DEFAULT_MAX_BYTES = 64 * 1024 ** 3;
