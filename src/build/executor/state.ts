import type { ContainerConfig, HistoryEntry, ImageConfig } from '../../oci/config.js';
import type { Digest } from '../../oci/digest.js';
import type { ImageManifest } from '../../oci/manifest.js';
import { MediaType } from '../../oci/mediatype.js';
import type { Platform } from '../../oci/platform.js';
import { chainIds } from '../../runtime/store/chainid.js';
import type { StoredImage } from '../../runtime/store/index.js';

/** A layer of the image being built; its blob is in the store's layout. */
export interface BuiltLayer {
  mediaType: string;
  digest: Digest;
  size: number;
  diffID: Digest;
  /** Annotations of the layer's descriptor (a zstd:chunked layer's TOC positions). */
  annotations?: Record<string, string>;
}

/**
 * A stage as it stands after some steps: the layers so far and the image config. Immutable by
 * convention: every step returns a new state, so a stage used as another's base is never changed.
 */
export interface StageState {
  platform: Platform;
  layers: readonly BuiltLayer[];
  /** The runtime config (Env, Cmd, ...), as it will go into the image. */
  config: ContainerConfig;
  history: readonly HistoryEntry[];
  author?: string;
  /** Whether this stage set CMD itself (ENTRYPOINT then keeps it; an inherited CMD is cleared). */
  cmdSet: boolean;
}

export function emptyState(platform: Platform): StageState {
  return { platform, layers: [], config: {}, history: [], cmdSet: false };
}

/** The state a `FROM image` starts with: the image's layers, config and history. */
export function stateFromImage(image: StoredImage): StageState {
  const layers = image.manifest.layers.map((l, i) => ({
    mediaType: l.mediaType,
    digest: l.digest,
    size: l.size,
    diffID: image.config.rootfs.diff_ids[i] as Digest,
  }));
  const platform: Platform = { os: image.config.os, architecture: image.config.architecture };
  if (image.config.variant) platform.variant = image.config.variant;
  const state: StageState = {
    platform,
    layers,
    config: structuredClone(image.config.config ?? {}),
    history: image.config.history ?? [],
    cmdSet: false,
  };
  if (image.config.author !== undefined) state.author = image.config.author;
  return state;
}

/** The chain ID of the top layer (what identifies the stage's filesystem), or `scratch`. */
export function topChain(state: StageState): string {
  const ids = chainIds(state.layers.map((l) => l.diffID));
  return ids.length === 0 ? 'scratch' : ids[ids.length - 1]!;
}

export function imageConfigOf(state: StageState, created: string): ImageConfig {
  const cfg: ImageConfig = {
    created,
    architecture: state.platform.architecture,
    os: state.platform.os,
    ...(state.platform.variant ? { variant: state.platform.variant } : {}),
    config: state.config,
    rootfs: { type: 'layers', diff_ids: state.layers.map((l) => l.diffID) },
    history: [...state.history],
  };
  if (state.author !== undefined) cfg.author = state.author;
  return cfg;
}

/**
 * The stage as an image the runtime's store understands (for snapshots and RUN containers). It is
 * never written anywhere; its name and digest only label log lines.
 */
export function asStoredImage(state: StageState, name: string): StoredImage {
  const config = imageConfigOf(state, new Date(0).toISOString());
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: `sha256:${'0'.repeat(64)}`, size: 0 },
    layers: state.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  return {
    name,
    digest: `sha256:${'0'.repeat(64)}`,
    manifest,
    config,
    configDigest: `sha256:${'0'.repeat(64)}`,
    chainIds: chainIds(config.rootfs.diff_ids),
  };
}

export function withLayer(state: StageState, layer: BuiltLayer | undefined, history: HistoryEntry): StageState {
  return {
    ...state,
    layers: layer ? [...state.layers, layer] : state.layers,
    history: [...state.history, layer ? history : { ...history, empty_layer: true }],
  };
}

/** What withCompressedLayers needs of output/compress.ts's LayerCompressor (named here, so state.ts does not import it). */
export interface LayerCompressing {
  compressed(layer: BuiltLayer, signal?: AbortSignal): Promise<BuiltLayer>;
}

/**
 * The state with each plain-tar layer replaced by its gzip form (what a push or a layout names);
 * the diffIDs, and so the config, stay the same. The same state when no layer needed it.
 */
export async function withCompressedLayers(state: StageState, compressor: LayerCompressing, signal?: AbortSignal): Promise<StageState> {
  const layers = await Promise.all(state.layers.map((l) => compressor.compressed(l, signal)));
  return layers.every((l, i) => l === state.layers[i]) ? state : { ...state, layers };
}
