import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { MAX_CONFIG_BYTES, parseConfig, type ImageConfig } from '../../oci/config.js';
import { digestBytes, type Digest } from '../../oci/digest.js';
import type { OciLayout } from '../../oci/layout.js';
import { encodeManifest, parseManifest, type ImageManifest } from '../../oci/manifest.js';
import { MediaType, layerCompression } from '../../oci/mediatype.js';
import { createZstdFramesDecompress } from '../../oci/zstd-frames.js';
import { parseImageName, type TransportContext } from '../../transports/index.js';
import { errorMessage } from '../../util/errors.js';
import { rootLogger } from '../../util/log.js';
import { streamToBuffer } from '../../util/streams.js';
import type { BuiltLayer } from '../executor/state.js';
import type { LayerCompressor } from '../output/compress.js';
import type { CacheEntry } from './local.js';

const log = rootLogger.child({ component: 'build-cache' });

/**
 * The registry cache (`--cache-from REPO`, `--cache-to REPO`): each cached step is a tiny image in the
 * cache repository, tagged with the step's cache key. Its one layer (none for a step that changed no
 * file) is the step's layer, and its config's `rootfs.diff_ids` carries the diffID, so a plain OCI
 * registry holds it and a fresh build pod with an empty store gets cache hits from it. Layers go
 * there compressed as the build's --compression-format says (the compressor; gzip, zstd or
 * zstd:chunked) and come back as the plain tars the store keeps, checked
 * against the diffID on the way in, so a cache hit gives the same local image as a fresh build.
 */
export class RegistryBuildCache {
  private readonly layout: OciLayout;
  private readonly from: readonly string[];
  private readonly to: readonly string[];
  private readonly context: TransportContext;
  private readonly compressor: LayerCompressor | undefined;

  /** Without a compressor, layers are pushed to --cache-to as the store has them. */
  constructor(layout: OciLayout, from: readonly string[], to: readonly string[], context: TransportContext = {}, compressor?: LayerCompressor) {
    this.layout = layout;
    this.from = from;
    this.to = to;
    this.context = context;
    this.compressor = compressor;
  }

  get enabled(): boolean {
    return this.from.length > 0 || this.to.length > 0;
  }

  /**
   * The entry for a key from the first --cache-from repository that has it; its layer blob is
   * fetched into the store. `from` names that repository.
   */
  async get(key: string, signal?: AbortSignal): Promise<{ entry: CacheEntry; from: string } | undefined> {
    for (const repo of this.from) {
      try {
        const src = await parseImageName(`docker://${repo}:${key}`).newSource(this.context);
        try {
          const raw = await src.getManifest(undefined, signal ? { signal } : {});
          const parsed = parseManifest(raw.bytes, raw.mediaType);
          if (parsed.kind !== 'image') continue;
          const config = parseConfig(
            await streamToBuffer(await src.getBlob(parsed.manifest.config, signal ? { signal } : {}), MAX_CONFIG_BYTES, 'cache image config'),
          );
          const desc = parsed.manifest.layers[0];
          if (!desc) return { entry: { createdAt: config.created ?? new Date().toISOString() }, from: repo };
          const diffID = config.rootfs.diff_ids[0] as Digest | undefined;
          if (!diffID) continue;
          const compression = layerCompression(desc.mediaType);
          if (compression !== 'gzip' && compression !== 'zstd' && compression !== 'none') continue;
          // The source stream is verified against the blob digest; the tar is checked against the diffID.
          let size = await this.layout.blobSize(diffID).catch(() => -1);
          if (size < 0) {
            const blob = await src.getBlob(desc, signal ? { signal } : {});
            let tar: Readable = blob;
            if (compression !== 'none') {
              // zstd through oci/zstd-frames: every frame (a --compression-format zstd:chunked entry has many).
              const decompress = compression === 'gzip' ? createGunzip() : createZstdFramesDecompress();
              // Either side failing ends both (a bad diffID stops the download too).
              pipeline(blob, decompress).catch(() => undefined);
              tar = decompress;
            }
            size = (await this.layout.writeBlob(tar, { digest: diffID }, signal)).size;
          }
          log.debug({ repo, key, digest: desc.digest, diffID }, 'registry cache hit');
          return { entry: { layer: { mediaType: MediaType.OciLayer, digest: diffID, size, diffID }, createdAt: config.created ?? '' }, from: repo };
        } finally {
          await src.close();
        }
      } catch (err) {
        if (signal?.aborted) throw err;
        log.debug({ repo, key, err: errorMessage(err) }, 'registry cache miss');
      }
    }
    return undefined;
  }

  /**
   * Pushes a step's result to every --cache-to repository but `except` (the one a hit came from:
   * it has the entry already, and sending it again would compress the layer for nothing).
   */
  async put(key: string, layer: BuiltLayer | undefined, signal?: AbortSignal, except?: string): Promise<void> {
    const to = this.to.filter((r) => r !== except);
    if (to.length === 0) return;
    const sent = layer && this.compressor ? await this.compressor.compressed(layer, signal) : layer;
    const config: ImageConfig = {
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: layer ? [layer.diffID] : [] },
    };
    const configBytes = Buffer.from(JSON.stringify(config));
    const configDesc = { mediaType: MediaType.OciConfig, digest: digestBytes(configBytes), size: configBytes.length };
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: configDesc,
      layers: sent ? [{ mediaType: sent.mediaType, digest: sent.digest, size: sent.size }] : [],
      annotations: { 'dev.stevedore.build.cache-key': key },
    };
    const raw = encodeManifest(manifest);
    const open = (d: { digest: Digest; size: number }): Promise<Readable> => (this.compressor ? this.compressor.open(d, signal) : this.layout.openBlob(d));
    for (const repo of to) {
      const dest = await parseImageName(`docker://${repo}:${key}`).newDestination(this.context);
      try {
        const op = signal ? { signal } : {};
        if (layer && !(await dest.tryReuseBlob(manifest.layers[0]!, op))) {
          await dest.putBlob(manifest.layers[0]!, await open(manifest.layers[0]!), op);
        }
        if (!(await dest.tryReuseBlob(configDesc, op))) await dest.putBlob(configDesc, Readable.from([configBytes]), op);
        await dest.putManifest(raw, { top: true, ...op });
        await dest.commit(op);
      } finally {
        await dest.close();
      }
    }
  }
}
