export { unpackLayer, applyLayers, type LayerInput } from './unpack.js';
export { resolveInRoot, resolveParentInRoot, splitRootedPath, MAX_SYMLINK_HOPS } from './rootpath.js';
export { UnsafeLayerEntryError, LayerTooLargeError, SymlinkLoopError } from './errors.js';
export { sniffCompression, zstdAvailable, type Compression, type CompressionChoice } from './decompress.js';
export { OPAQUE_WHITEOUT, WHITEOUT_PREFIX } from './whiteout.js';
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
