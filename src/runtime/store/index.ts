export { ImageStore, ImageUnavailableError, type ContainerRootfs, type ImageSummary, type PullPolicy, type RootfsMode, type StoredImage } from './store.js';
export { chainIds } from './chainid.js';
export { normaliseImageName, type ImageName } from './names.js';
export { defaultStoreRoot } from './paths.js';
export { pruneStore, type PruneResult } from './gc.js';
