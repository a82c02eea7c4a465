import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { HistoryEntry } from '../../oci/config.js';
import type { Digest } from '../../oci/digest.js';
import type { ImageStore, StoredImage } from '../../runtime/store/index.js';
import type { BuildPlan } from '../containerfile/index.js';
import type { LayerFile } from '../layers/layer-file.js';
import type { LayerEntry } from '../layers/entry.js';
import { materializeEntries } from '../layers/materialize.js';
import { rootLogger } from '../../util/log.js';
import type { LocalBuildCache } from '../cache/local.js';
import type { RegistryBuildCache } from '../cache/registry.js';
import { localBaseMoved } from './base-image.js';
import { normaliseImageName } from '../../runtime/store/names.js';
import { imageIdentifier, SourceDeniedError } from '../source-policy.js';
import { asStoredImage, stateFromImage, topChain, type BuiltLayer, type StageState } from './state.js';
import { SourceNotFoundError } from './errors.js';
import { pullForPlatform } from './platform-pull.js';
import { resolveBaseDigest, type BaseImageDigest } from './base-digests.js';
import { formatPlatform, hostPlatform, type Platform } from '../../oci/platform.js';
import type { ExecuteOptions } from './types.js';
import type { BuildContext } from '../context/source.js';

const execFileP = promisify(execFile);

/** A snapshot being made ahead of its layer (BuildRun.prepareSnapshot). */
export interface PreparedSnapshot {
  /** The temp dir: `rootfs/` inside it once `ready`. */
  tmp: string;
  ready: Promise<void>;
  /** Waits for it and removes it (the step failed, or the snapshot was not needed after all). */
  discard(): Promise<void>;
}
const log = rootLogger.child({ component: 'build-snapshot' });

async function isDirectory(p: string): Promise<boolean> {
  return stat(p).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

/**
 * What every step of a build shares: the store (snapshots, layer blobs), the cache, the states of
 * stages already built, and a scratch directory. One per build.
 */
export class BuildRun {
  readonly opts: ExecuteOptions;
  readonly plan: BuildPlan;
  readonly store: ImageStore;
  readonly cache: LocalBuildCache;
  readonly remote: RegistryBuildCache | undefined;
  /** Scratch space for layer files and heredoc sources; removed when the build ends. */
  readonly workDir: string;
  /** Final state of each finished stage, by index. */
  readonly stages = new Map<number, StageState>();
  /** Each stage's state right after its FROM (what --squash keeps below the squashed layer). */
  readonly initial = new Map<number, StageState>();
  /** Each stage of the plan, finished or not: a step needing another stage waits for it here. */
  readonly pending = new Map<number, Promise<StageState>>();
  readonly #images = new Map<string, Promise<StoredImage>>();
  /** FROM images resolved to digests (with opts.reportBaseImages), by the name the build used. */
  readonly bases = new Map<string, Promise<BaseImageDigest | undefined>>();
  /** Snapshots by chain ID, built once per build however many steps ask. */
  readonly #rootfs = new Map<string, Promise<string>>();
  /** How to make a snapshot faster than by unpacking its layer, where a step left a way (seedSnapshot). */
  readonly #seeds = new Map<string, () => Promise<string>>();

  constructor(opts: ExecuteOptions, plan: BuildPlan, cache: LocalBuildCache, workDir: string, remote?: RegistryBuildCache) {
    this.opts = opts;
    this.plan = plan;
    this.store = opts.store;
    this.cache = cache;
    this.remote = remote?.enabled ? remote : undefined;
    this.workDir = workDir;
  }

  get created(): string {
    return this.opts.timestamp !== undefined ? new Date(this.opts.timestamp * 1000).toISOString() : new Date().toISOString();
  }

  /**
   * How every step writes its layer: a plain tar (digest = diffID) in the scratch dir, mtimes
   * clamped to --timestamp. The store keeps layers uncompressed, as buildah does; gzip happens only
   * when the image leaves the machine (output/compress.ts), so a cold build spends no CPU on it.
   */
  layerOptions(): { workDir: string; timestamp?: number; compress: false } {
    return { workDir: this.workDir, compress: false, ...(this.opts.timestamp !== undefined ? { timestamp: this.opts.timestamp } : {}) };
  }

  history(createdBy: string, comment?: string): HistoryEntry {
    return { created: this.created, created_by: createdBy, ...(comment ? { comment } : {}) };
  }

  /**
   * An image from a registry (or transport name), pulled into the store once per build: the host's
   * platform through the runtime's store, another platform beside it.
   */
  image(name: string, platform?: Platform): Promise<StoredImage> {
    let ref: string;
    try {
      ref = this.policyRef(this.imageRef(name));
    } catch (err) {
      return Promise.reject(err);
    }
    const foreign = platform !== undefined && formatPlatform(platform) !== formatPlatform(hostPlatform());
    const key = foreign ? `${ref}@${formatPlatform(platform)}` : ref;
    let p = this.#images.get(key);
    if (!p) {
      const policy = this.opts.pull ?? 'missing';
      p = (async () => {
        // A local base replaced at the same path is pulled again: the store's copy (and with it
        // every cached step above it) belongs to the old digest.
        const moved =
          policy === 'missing' &&
          !foreign &&
          (await localBaseMoved(this.store, ref, {
            ...(this.opts.pullContext ? { context: this.opts.pullContext } : {}),
            ...(this.opts.signal ? { signal: this.opts.signal } : {}),
          }));
        const how = { policy: moved ? 'always' : policy, context: this.opts.pullContext, signal: this.opts.signal } as const;
        return (foreign ? pullForPlatform(this.store, ref, platform, how) : this.store.pull(ref, how)).catch((err: unknown) => {
          throw new SourceNotFoundError(`image "${ref}"${foreign ? ` for ${formatPlatform(platform)}` : ''}: ${(err as Error).message}`, { cause: err });
        });
      })();
      this.#images.set(key, p);
    }
    return p;
  }

  /**
   * Resolves a FROM image's digest once per build (opts.reportBaseImages), before it is pulled. A
   * name the pull will refuse (a denied source, a build context of files) is left to the pull.
   */
  async recordBase(name: string): Promise<void> {
    if (!this.opts.reportBaseImages) return;
    let ref: string;
    try {
      ref = this.policyRef(this.imageRef(name));
    } catch {
      return;
    }
    let p = this.bases.get(ref);
    if (!p) {
      p = resolveBaseDigest(ref, this.opts.pullContext ?? {}, this.opts.signal);
      this.bases.set(ref, p);
    }
    await p;
  }

  /** The image a name stands for: a `--build-context NAME=docker-image://REF` replaces it. */
  imageRef(name: string): string {
    const named = this.opts.namedContexts?.get(name.toLowerCase());
    if (named?.kind === 'files')
      throw new SourceNotFoundError(
        `"${name}" is a --build-context of files, not an image: it can be read by COPY --from and RUN --mount=from, not used as a base`,
      );
    return named?.kind === 'image' ? named.ref : name;
  }

  /**
   * The image the source policy lets the build use for `ref` (pinned by a CONVERT, or refused): a
   * registry name is checked as BuildKit's `docker-image://host/repo:tag` identifier; local
   * transports (`oci:DIR`, ...) are not registry sources and are not checked.
   */
  policyRef(ref: string): string {
    const policy = this.opts.sourcePolicy;
    if (!policy) return ref;
    const { storeName, source } = normaliseImageName(ref);
    if (!source.startsWith('docker://')) return ref;
    const id = imageIdentifier(storeName);
    const next = policy.evaluate(id);
    if (next === id) return ref;
    if (!next.startsWith('docker-image://')) throw new SourceDeniedError(`source ${id}: the policy converts it to ${next}, which is not an image`);
    return next.slice('docker-image://'.length);
  }

  /** A `--build-context` of files by this name (stages come first: a stage of that name is the stage). */
  namedFiles(name: string): BuildContext | undefined {
    const named = this.opts.namedContexts?.get(name.toLowerCase());
    if (named?.kind !== 'files') return undefined;
    if (this.plan.stages.some((s) => s.name === name.toLowerCase())) return undefined;
    return named.context;
  }

  /** The complete filesystem of a state (a store snapshot, built from its layers when missing). */
  rootfs(state: StageState): Promise<string> {
    const chain = topChain(state);
    let p = this.#rootfs.get(chain);
    if (!p) {
      const seed = this.#seeds.get(chain);
      p = seed ? seed() : this.store.snapshot(asStoredImage(state, 'build'), { signal: this.opts.signal });
      // A failed snapshot (an abort) is not remembered: a later step tries again.
      p.catch(() => this.#rootfs.delete(chain));
      this.#rootfs.set(chain, p);
    }
    return p;
  }

  /**
   * Starts making the snapshot of `parent` plus a COPY layer's `entries` in a temp dir, while the
   * layer itself is still being written: the parent's snapshot hardlinked (as the store does), the
   * entries applied onto it (materialize.ts). seedSnapshot later names it by its chain ID. Root only
   * (owners are set as the layer states them); undefined otherwise.
   */
  prepareSnapshot(parent: StageState, entries: readonly LayerEntry[]): PreparedSnapshot | undefined {
    if (process.geteuid?.() !== 0) return undefined;
    const tmp = join(this.store.root, 'snapshots', `.tmp-${randomBytes(8).toString('hex')}`);
    const started = Date.now();
    const ready = (async (): Promise<void> => {
      const lower = await this.rootfs(parent);
      await mkdir(tmp);
      await execFileP('cp', ['-al', '--', lower, join(tmp, 'rootfs')], { maxBuffer: 16 * 1024 * 1024 });
      await materializeEntries(join(tmp, 'rootfs'), entries, {
        ...(this.opts.timestamp !== undefined ? { timestamp: this.opts.timestamp } : {}),
        ...(this.opts.signal ? { signal: this.opts.signal } : {}),
      });
      log.debug({ entries: entries.length, ms: Date.now() - started }, 'snapshot materialized');
    })();
    ready.catch(() => undefined); // awaited by seedSnapshot or discard
    const discard = async (): Promise<void> => {
      await ready.catch(() => undefined);
      await rm(tmp, { recursive: true, force: true });
    };
    return { tmp, ready, discard };
  }

  /**
   * Makes the snapshot of `next` (= `parent` plus one COPY layer) from the entries that layer was
   * written from (`prepared`, or prepared when a later step asks), renamed into the store's place
   * for the chain as the store does. Falls back to the store's unpack of the layer when the entries
   * cannot be replayed (a source changed, an entry kind it does not handle) or when not root.
   */
  seedSnapshot(parent: StageState, next: StageState, entries: readonly LayerEntry[], prepared?: PreparedSnapshot): void {
    const chain = topChain(next);
    if (this.#rootfs.has(chain) || process.geteuid?.() !== 0) {
      void prepared?.discard();
      return;
    }
    const layer = next.layers[next.layers.length - 1]!;
    // Without `prepared`, made only when a later step asks (rootfs or prefetch): a last COPY needs no snapshot.
    this.#seeds.set(chain, async (): Promise<string> => {
      const dir = this.store.snapshotDir(chain as Digest);
      const rootfs = join(dir, 'rootfs');
      if (await isDirectory(rootfs)) {
        await prepared?.discard();
        return rootfs;
      }
      const p = prepared ?? this.prepareSnapshot(parent, entries)!;
      try {
        await p.ready;
        const parentChain = parent.layers.length > 0 ? topChain(parent) : null;
        await writeFile(join(p.tmp, 'snapshot.json'), JSON.stringify({ chainId: chain, diffId: layer.diffID, layer: layer.digest, parent: parentChain }));
        await rename(p.tmp, dir).catch((err: NodeJS.ErrnoException) => {
          // Someone else finished the same snapshot first: theirs is as good as ours.
          if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
        });
        return rootfs;
      } catch (err) {
        if (this.opts.signal?.aborted) throw err;
        log.debug({ chainId: chain, err: (err as Error).message }, 'snapshot not materialized; unpacking the layer');
        return this.store.snapshot(asStoredImage(next, 'build'), { signal: this.opts.signal });
      } finally {
        await rm(p.tmp, { recursive: true, force: true });
      }
    });
  }

  /**
   * Starts building a state's snapshot in the background, for a later step that will need it (the
   * next RUN), so unpacking overlaps with whatever comes first (hashing, waiting for another stage).
   */
  prefetch(state: StageState): void {
    this.rootfs(state).catch(() => undefined);
  }

  /**
   * `--from` / `from=` text → a finished stage (by index or name) or an image. The planner has
   * already ordered stages so that one named here is finished.
   */
  async source(ref: string, platform?: Platform): Promise<{ state: StageState; key: string }> {
    const byIndex = /^\d+$/.test(ref) ? Number(ref) : undefined;
    const stage = this.plan.stages.find((s) => (byIndex !== undefined ? s.index === byIndex : s.name === ref.toLowerCase()));
    if (stage) {
      const state = this.stages.get(stage.index) ?? (await this.pending.get(stage.index));
      if (!state) throw new SourceNotFoundError(`stage "${ref}" has not been built`);
      return { state, key: `stage:${topChain(state)}` };
    }
    const image = await this.image(ref, platform);
    return { state: stateFromImage(image), key: `image:${image.digest}` };
  }

  /** Moves a layer file into the store's layout; an empty layer (no change) yields undefined. */
  async adopt(layer: LayerFile): Promise<BuiltLayer | undefined> {
    if (layer.empty) return undefined;
    const digest = layer.digest as Digest;
    // The layer writer hashed the file as it wrote it, and the scratch dir is inside the store:
    // a rename puts it in place without copying (a 64 MiB layer is not written twice).
    if (!(await this.store.layout.hasBlob(digest, layer.size))) {
      const target = this.store.layout.blobPath(digest);
      await mkdir(dirname(target), { recursive: true });
      await rename(layer.path, target).catch(async (err: NodeJS.ErrnoException) => {
        // Stages running in parallel may write the same layer (same digest, same file name in the
        // build's scratch dir): whichever renames first puts it in place, and the blob being there
        // is success for the other.
        if (err.code === 'ENOENT' && (await this.store.layout.hasBlob(digest, layer.size))) return;
        if (err.code !== 'EXDEV') throw err;
        await this.store.layout.writeBlob(createReadStream(layer.path), { digest, size: layer.size }, this.opts.signal);
      });
    }
    return { mediaType: layer.mediaType, digest, size: layer.size, diffID: layer.diffID as Digest };
  }

  /**
   * Looks a key up (unless --no-cache): the local cache, then the --cache-from repositories (a hit
   * there fetches the layer and is remembered locally). A hit is also sent to --cache-to, so a
   * registry cache fills up even from builds that ran locally before.
   */
  async cached(key: string): Promise<{ layer?: BuiltLayer } | undefined> {
    if (this.opts.noCache) return undefined;
    let hit = await this.cache.get(key);
    let from: string | undefined;
    if (!hit && this.remote) {
      const remote = await this.remote.get(key, this.opts.signal);
      if (remote) {
        ({ entry: hit, from } = remote);
        await this.cache.put(key, hit);
      }
    }
    if (hit) await this.pushCache(key, hit.layer, from);
    return hit;
  }

  async remember(key: string, layer: BuiltLayer | undefined): Promise<void> {
    await this.cache.put(key, { ...(layer ? { layer } : {}), createdAt: new Date().toISOString() });
    await this.pushCache(key, layer);
  }

  /** A failed cache push is a warning: the image itself is still good. */
  private async pushCache(key: string, layer: BuiltLayer | undefined, except?: string): Promise<void> {
    if (!this.remote) return;
    try {
      await this.remote.put(key, layer, this.opts.signal, except);
    } catch (err) {
      if (this.opts.signal?.aborted) throw err;
      this.opts.reporter?.warn(`--cache-to: ${(err as Error).message}`);
    }
  }
}
