/**
 * The layer unpacker: applies OCI layer tar streams onto a rootfs directory without letting any
 * entry reach outside it.
 *
 * Policies, in one place:
 * - Names are cleaned lexically; a `..` that climbs above the root is refused (UNSAFE_LAYER_ENTRY),
 *   a leading `/` means the root (as in Docker and containerd).
 * - Directories along a name are resolved inside the root with symlinks followed as if the root
 *   were `/` (resolveInRoot), so symlinks from this or earlier layers are contained, not refused.
 *   The last component is always replaced, never followed.
 * - Hardlinks must name a regular file already inside the root.
 * - Whiteouts and opaque markers (layer.md) remove lower-layer content only; whiteouts of `.`/`..`
 *   are refused. Markers are never written to disk.
 * - Device nodes and fifos are skipped and listed in `skipped` (Node has no mknod/mkfifo); so are
 *   `security.capability` xattrs. Other xattrs are ignored.
 * - Limits on entries and uncompressed bytes stop bombs (LAYER_TOO_LARGE).
 * - Any refusal, limit, corrupt stream or abort rejects the whole unpack; the caller discards the
 *   partial rootfs.
 * - A layer can also be unpacked in two halves (staged.ts): stageLayer reads, checks and hashes it
 *   into a staging dir without any rootfs (so the layers of an image stage in parallel), then
 *   applyStagedLayer applies it in order with the same rules, linking the staged files in.
 */
export { unpackLayer, applyLayers, type LayerInput } from './unpack.js';
export { stageLayer, applyStagedLayer, type StagedLayer, type StagedEntry } from './staged.js';
export { resolveInRoot, resolveParentInRoot, splitRootedPath, MAX_SYMLINK_HOPS } from './rootpath.js';
export { UnsafeLayerEntryError, LayerTooLargeError, SymlinkLoopError } from './errors.js';
export {
  compressionForMediaType,
  openDecompressed,
  zstdAvailable,
  type Compression,
  type CompressionChoice,
} from './decompress.js';
export { parseEntry, type RawHeader } from './entry.js';
export { AUFS_META_PREFIX, OPAQUE_WHITEOUT, WHITEOUT_PREFIX } from './whiteout.js';
export {
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_ENTRIES,
  type IdMap,
  type IdMapping,
  type SkippedEntry,
  type UnpackLimits,
  type UnpackOptions,
  type UnpackResult,
} from './types.js';
