import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { createReadStream } from 'node:fs';
import { chmod, chown, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import type { CopyOptions } from '../../copy/copy.js';
import { parseConfig, type ImageConfig } from '../../oci/config.js';
import type { Descriptor } from '../../oci/descriptor.js';
import { digestHex, type Digest } from '../../oci/digest.js';
import { OciLayout } from '../../oci/layout.js';
import { parseManifest, type ImageManifest } from '../../oci/manifest.js';
import { hostPlatform, platformMatches } from '../../oci/platform.js';
import type { TransportContext } from '../../transports/index.js';
import { errorMessage, NotFoundError, StevedoreError } from '../../util/errors.js';
import { rootLogger } from '../../util/log.js';
import { unmountAll } from '../mounts.js';
import type { IdMap } from '../unpack/index.js';
import { chainIds } from './chainid.js';
import { linkTree } from './linktree.js';
import { normaliseImageName } from './names.js';
import { defaultStoreRoot } from './paths.js';
import type { StagedTemp } from './stage.js';
import { Limiter } from '../../util/pool.js';

const run = promisify(execFile);
/** Layers staged at once when snapshots are built from stored blobs (the machine has few cores). */
const STAGE_JOBS = 3;
/** Read size for layer blobs: large chunks keep the per-chunk cost of the pipeline small. */
const READ_CHUNK = 1024 * 1024;
const log = rootLogger.child({ component: 'store' });

export type PullPolicy = 'always' | 'missing' | 'never';
export type RootfsMode = 'auto' | 'overlay' | 'copy';

/** An image in the store, with everything a container needs from it. */
export interface StoredImage {
  name: string;
  digest: Digest;
  manifest: ImageManifest;
  config: ImageConfig;
  configDigest: Digest;
  /** Chain IDs, one per layer, bottom first. */
  chainIds: Digest[];
}

export interface ImageSummary {
  name: string;
  digest: Digest;
  size: number;
}

/** A container's root filesystem, made from a snapshot. */
export interface ContainerRootfs {
  /** The container's own directory (the bundle). */
  dir: string;
  rootfs: string;
  mode: 'overlay' | 'copy';
  /** Unmounts the overlay (the directory, with its upper dir, stays). */
  unmount(): Promise<void>;
  /** Unmounts and removes the directory. */
  remove(): Promise<void>;
}

export class ImageUnavailableError extends StevedoreError {
  constructor(name: string, why: string) {
    super('IMAGE_UNAVAILABLE', `image ${name}: ${why}`);
  }
}

/**
 * The local store under one root directory:
 * - `images/`: an OCI image layout holding every pulled image, tagged with its normalised name;
 * - `snapshots/<chainID hex>/rootfs`: a layer applied onto a hardlinked copy of its parent's
 *   snapshot, so each snapshot is a complete, immutable rootfs. A layer is first staged (read,
 *   decompressed, headers checked, files written: see unpack/staged.ts) in `snapshots/.tmp-*`, in
 *   parallel with the other layers and, for `pull(..., { snapshots })`, straight from the download;
 *   its diffID is checked against the config, then it is applied onto `<tmp>/rootfs` in layer order
 *   and the temp dir renamed into place. An interrupted pull or unpack leaves only `.tmp-*` dirs,
 *   which nothing uses and prune removes;
 * - `containers/<id>/`: a bundle per container; its `rootfs` is an overlay over the top snapshot
 *   (upper and work dirs beside it) where overlay mounts work, else a copy of the snapshot.
 */
export class ImageStore {
  readonly root: string;
  readonly layout: OciLayout;

  private constructor(root: string, layout: OciLayout) {
    this.root = root;
    this.layout = layout;
  }

  static async open(root: string = defaultStoreRoot()): Promise<ImageStore> {
    for (const d of ['images', 'snapshots', 'containers']) await mkdir(join(root, d), { recursive: true });
    return new ImageStore(root, await OciLayout.open(join(root, 'images'), { create: true }));
  }

  get imagesDir(): string {
    return join(this.root, 'images');
  }

  /** Pulls (or not, by policy) and returns the image. */
  async pull(
    name: string,
    opts: {
      policy?: PullPolicy;
      context?: TransportContext;
      signal?: AbortSignal;
      onProgress?: CopyOptions['onProgress'];
      /**
       * Also build the image's snapshots (for this id map) before returning, unpacking each layer
       * from the download itself as it arrives instead of from the stored blob afterwards.
       */
      snapshots?: { idMap?: IdMap };
    } = {},
  ): Promise<StoredImage> {
    const policy = opts.policy ?? 'missing';
    const { storeName, source } = normaliseImageName(name);
    if (policy !== 'always') {
      const have = await this.get(storeName).catch((err: unknown) => {
        if (err instanceof NotFoundError) return undefined;
        throw err;
      });
      if (have) return have;
      if (policy === 'never') throw new ImageUnavailableError(storeName, 'not in the local store and --pull=never');
    }
    log.info({ ref: storeName, source }, 'pulling');
    // The copy engine, transports and registry client load only when something is pulled.
    const [{ copyReference }, { parseImageName }, { OciReference }] = await Promise.all([
      import('../../copy/copy.js'),
      import('../../transports/index.js'),
      import('../../transports/oci.js'),
    ]);
    const dest = new OciReference(this.imagesDir, storeName);
    const copyOpts = { srcContext: opts.context, signal: opts.signal, onProgress: opts.onProgress, platforms: [hostPlatform()] };
    if (!opts.snapshots) {
      await copyReference(parseImageName(source), dest, copyOpts);
      return this.get(storeName);
    }
    // The same pipeline, into a destination that also stages each layer while it downloads.
    const { StagingReference } = await import('./staging-destination.js');
    const staging = new StagingReference(dest, this.layout, join(this.root, 'snapshots'), opts.signal);
    try {
      await copyReference(parseImageName(source), staging, copyOpts);
      const image = await this.get(storeName);
      await this.snapshot(image, { ...opts.snapshots, signal: opts.signal, staged: staging.staged });
      return image;
    } finally {
      await staging.discardAll();
    }
  }

  /** An image already in the store, by any name that normalises to its store name. */
  async get(name: string): Promise<StoredImage> {
    const storeName = normaliseImageName(name).storeName;
    let desc: Descriptor = await this.layout.resolve(storeName);
    let parsed = parseManifest(await this.layout.readBlob(desc.digest), desc.mediaType);
    if (parsed.kind === 'index') {
      const host = hostPlatform();
      const child = parsed.index.manifests.find((m) => m.platform && platformMatches(m.platform, host));
      if (!child) throw new ImageUnavailableError(storeName, 'no image for this platform in its index');
      desc = child;
      parsed = parseManifest(await this.layout.readBlob(desc.digest), desc.mediaType);
    }
    if (parsed.kind !== 'image') throw new ImageUnavailableError(storeName, `unsupported manifest ${desc.mediaType}`);
    const config = parseConfig(await this.layout.readBlob(parsed.manifest.config.digest));
    if (config.rootfs.diff_ids.length !== parsed.manifest.layers.length) {
      throw new ImageUnavailableError(storeName, `config lists ${config.rootfs.diff_ids.length} diff_ids for ${parsed.manifest.layers.length} layers`);
    }
    return {
      name: storeName,
      digest: desc.digest,
      manifest: parsed.manifest,
      config,
      configDigest: parsed.manifest.config.digest,
      chainIds: chainIds(config.rootfs.diff_ids),
    };
  }

  async list(): Promise<ImageSummary[]> {
    const index = await this.layout.readIndex();
    const out: ImageSummary[] = [];
    for (const m of index.manifests) {
      const name = m.annotations?.['org.opencontainers.image.ref.name'];
      if (name) out.push({ name, digest: m.digest, size: m.size });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Where the snapshot of a chain ID lives. Snapshots for a user namespace hold the same content
   * with ids shifted through its map, so they are kept apart: `<chainID hex>-<hash of the map>`.
   */
  /** Untags an image; its content goes at the next prune. */
  async removeImage(name: string): Promise<boolean> {
    return this.layout.removeRef(normaliseImageName(name).storeName);
  }

  snapshotDir(chainId: Digest, idMap?: IdMap): string {
    return join(this.root, 'snapshots', digestHex(chainId) + idMapSuffix(idMap));
  }

  /**
   * The complete rootfs of the image's top layer, building the missing snapshots bottom up.
   * Returns the path of the top snapshot's `rootfs` (never to be written to).
   */
  async snapshot(
    image: StoredImage,
    opts: {
      signal?: AbortSignal;
      idMap?: IdMap;
      /** Layers already staged by a pull, by digest; those used are taken out. */
      staged?: Map<Digest, Promise<StagedTemp>>;
    } = {},
  ): Promise<string> {
    const { idMap } = opts;
    if (image.chainIds.length === 0) {
      const empty = join(this.root, 'snapshots', `empty${idMapSuffix(idMap)}`, 'rootfs');
      await mkdir(empty, { recursive: true });
      if (idMap) await chownToMappedRoot(empty, idMap);
      return empty;
    }
    let start = image.chainIds.length;
    while (start > 0 && !(await isDir(join(this.snapshotDir(image.chainIds[start - 1]!, idMap), 'rootfs')))) start--;
    const top = join(this.snapshotDir(image.chainIds[image.chainIds.length - 1]!, idMap), 'rootfs');
    if (start === image.chainIds.length) return top;
    opts.signal?.throwIfAborted();
    // The unpacker (tar-stream, decompressors) loads only when a snapshot is built, not for a warm run.
    const { stageToTemp, applyStagedTemp } = await import('./stage.js');
    // Layers are staged (read, checked, hashed, files written) a few at a time in parallel, since
    // that needs no parent; each is then applied onto its parent's hardlinked snapshot in order.
    const stop = new AbortController();
    setMaxListeners(0, stop.signal); // one listener per layer being staged
    const onAbort = (): void => stop.abort(opts.signal?.reason);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const gate = new Limiter(STAGE_JOBS);
    const staging: Promise<StagedTemp>[] = [];
    for (let i = start; i < image.chainIds.length; i++) {
      const layer = image.manifest.layers[i]!;
      const diffID = image.config.rootfs.diff_ids[i]! as Digest;
      const pulled = opts.staged?.get(layer.digest);
      opts.staged?.delete(layer.digest);
      const p = pulled
        ? pulled.then(async (t) => {
            if (t.staged.diffID === diffID) return t;
            await rm(t.tmp, { recursive: true, force: true });
            throw new StevedoreError('DIFFID_MISMATCH', `layer ${layer.digest}: diffID ${t.staged.diffID} differs from the config's ${diffID}`);
          })
        : gate.run(async () => {
            stop.signal.throwIfAborted();
            return stageToTemp(join(this.root, 'snapshots'), await this.openLayerFile(layer), layer, diffID, stop.signal);
          });
      // The first failure stops the others at once rather than when their turn comes.
      p.catch((err: unknown) => stop.abort(err));
      staging.push(p);
    }
    try {
      for (let i = start; i < image.chainIds.length; i++) {
        await this.buildSnapshot(image, i, await staging[i - start]!, applyStagedTemp, stop.signal, idMap);
      }
    } catch (err) {
      stop.abort(err);
      // Whatever was staged is not used: its temp dirs go now, not at the next prune.
      await Promise.all(
        staging.map((p) =>
          p.then(
            (t) => rm(t.tmp, { recursive: true, force: true }),
            () => undefined,
          ),
        ),
      );
      throw opts.signal?.aborted ? opts.signal.reason : err;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
    return top;
  }

  /**
   * A stored layer blob, read raw in large chunks. It is not re-hashed against its digest here: the
   * unpack hashes the uncompressed stream and checks it against the config's diffID (the config is
   * verified against its digest, itself named by the verified manifest), so a blob that changed on
   * disk cannot yield a snapshot; re-hashing the compressed bytes would only cost a second pass.
   */
  private async openLayerFile(layer: Descriptor): Promise<Readable> {
    const path = this.layout.blobPath(layer.digest);
    const st = await stat(path).catch(() => undefined);
    if (!st?.isFile()) throw new NotFoundError(`layer ${layer.digest} is not in the store (${this.layout.path})`);
    if (layer.size >= 0 && st.size !== layer.size) {
      throw new StevedoreError('BLOB_SIZE_MISMATCH', `layer ${layer.digest} in the store is ${st.size} bytes, the manifest says ${layer.size}`);
    }
    return createReadStream(path, { highWaterMark: READ_CHUNK });
  }

  /** Applies a staged layer onto a hardlinked copy of its parent's snapshot and renames it into place. */
  private async buildSnapshot(
    image: StoredImage,
    i: number,
    t: StagedTemp,
    apply: (t: StagedTemp, opts: { idMap?: IdMap; signal?: AbortSignal }) => Promise<{ entries: number }>,
    signal?: AbortSignal,
    idMap?: IdMap,
  ): Promise<void> {
    const chainId = image.chainIds[i]!;
    const layer = image.manifest.layers[i]!;
    const started = Date.now();
    try {
      signal?.throwIfAborted();
      const rootfs = join(t.tmp, 'rootfs');
      if (i === 0) {
        await mkdir(rootfs, { mode: 0o755 });
        if (idMap) await chownToMappedRoot(rootfs, idMap);
      } else await linkTree(join(this.snapshotDir(image.chainIds[i - 1]!, idMap), 'rootfs'), rootfs);
      const result = await apply(t, { ...(idMap ? { idMap } : {}), signal });
      await writeFile(
        join(t.tmp, 'snapshot.json'),
        JSON.stringify({ chainId, diffId: t.staged.diffID, layer: layer.digest, parent: i > 0 ? image.chainIds[i - 1] : null }),
      );
      try {
        await rename(t.tmp, this.snapshotDir(chainId, idMap));
      } catch (err) {
        // Someone else finished the same snapshot first: theirs is as good as ours.
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      }
      log.debug({ chainId, layer: layer.digest, entries: result.entries, ms: Date.now() - started }, 'snapshot built');
    } finally {
      await rm(t.tmp, { recursive: true, force: true });
    }
  }

  /** Snapshot directories left by interrupted unpacks (never used; removed by `prune`). */
  async staleTemps(): Promise<string[]> {
    const names = await readdir(join(this.root, 'snapshots'));
    return names.filter((n) => n.startsWith('.tmp-')).map((n) => join(this.root, 'snapshots', n));
  }

  /**
   * Removes what interrupted unpacks left behind. Only safe when no unpack is running in another
   * process: a temp dir being written is indistinguishable from one that was abandoned.
   */
  async pruneTemps(opts: { olderThanMs?: number } = {}): Promise<string[]> {
    const removed: string[] = [];
    const cutoff = Date.now() - (opts.olderThanMs ?? 0);
    for (const path of await this.staleTemps()) {
      const st = await stat(path).catch(() => undefined);
      if (!st || st.mtimeMs > cutoff) continue;
      await rm(path, { recursive: true, force: true });
      removed.push(path);
    }
    return removed;
  }

  /**
   * Makes a container's directory with a writable rootfs over the image's top snapshot.
   * `volatile`: the container is thrown away when it exits (`run --rm`), so its overlay need not
   * sync the upper dir (overlayfs `volatile`, Linux >= 5.10; Podman mounts --rm containers so).
   * Unmounting a plain overlay syncs the whole filesystem under it: 10-40 ms on a quiet host,
   * over 100 ms while other work writes to the same disk.
   */
  async createRootfs(
    id: string,
    image: StoredImage,
    opts: { mode?: RootfsMode; signal?: AbortSignal; idMap?: IdMap; volatile?: boolean } = {},
  ): Promise<ContainerRootfs> {
    const { idMap } = opts;
    const lower = await this.snapshot(image, opts);
    const dir = join(this.root, 'containers', id);
    // In a user namespace the container's root is an unprivileged host uid that must reach its rootfs.
    await mkdir(dir, { mode: idMap ? 0o711 : 0o700 });
    if (idMap) await chmod(dir, 0o711);
    const rootfs = join(dir, 'rootfs');
    await mkdir(rootfs);
    const mode = opts.mode ?? 'auto';
    let mounted = false;
    if (mode !== 'copy') {
      try {
        await mkdir(join(dir, 'upper'));
        await mkdir(join(dir, 'work'));
        // The upper dir's root is the merged root's: it must belong to the container's root.
        if (idMap) await chownToMappedRoot(join(dir, 'upper'), idMap);
        if (/[,:]/.test(lower + dir)) throw new Error('paths with "," or ":" cannot be overlay options');
        const dirs = `lowerdir=${lower},upperdir=${join(dir, 'upper')},workdir=${join(dir, 'work')}`;
        // A kernel without `volatile` refuses the option: mount as before.
        const mount = await mountBinary('mount');
        if (opts.volatile)
          await run(mount, ['-t', 'overlay', 'overlay', '-o', `${dirs},volatile`, rootfs]).then(
            () => (mounted = true),
            () => undefined,
          );
        if (!mounted) await run(mount, ['-t', 'overlay', 'overlay', '-o', dirs, rootfs]);
        mounted = true;
      } catch (err) {
        if (mode === 'overlay') {
          await rm(dir, { recursive: true, force: true });
          throw new StevedoreError('OVERLAY_FAILED', `overlay mount for container ${id} failed: ${errorMessage(err)}`, { cause: err });
        }
        log.debug({ id, err: errorMessage(err) }, 'overlay unavailable, copying the snapshot');
      }
    }
    if (!mounted) {
      await rm(rootfs, { recursive: true, force: true });
      await copyTree(lower, rootfs);
    }
    const unmount = async (): Promise<void> => {
      if (!mounted) return;
      mounted = false;
      const umount = await mountBinary('umount');
      await run(umount, [rootfs]).catch(() => run(umount, ['-l', rootfs]));
    };
    return {
      dir,
      rootfs,
      mode: mounted ? 'overlay' : 'copy',
      unmount,
      remove: async () => {
        await unmount();
        await rm(dir, { recursive: true, force: true });
      },
    };
  }

  /**
   * Removes every snapshot made for one id map (a run's user namespace whose ids are given back):
   * they are of no use to a run with other ids, and a later holder of the same ids builds its own.
   */
  async removeSnapshotsFor(idMap: IdMap): Promise<void> {
    const suffix = idMapSuffix(idMap);
    const dir = join(this.root, 'snapshots');
    const names = await readdir(dir).catch(() => [] as string[]);
    await Promise.all(names.filter((n) => n.endsWith(suffix)).map((n) => rm(join(dir, n), { recursive: true, force: true })));
  }

  /**
   * Undoes the rootfs mount of container `id` (left by a monitor that died): unmounted, lazily if
   * busy; nothing when it is not mounted.
   */
  async releaseRootfs(id: string): Promise<void> {
    await unmountAll(join(this.root, 'containers', id, 'rootfs'));
  }

  async containerIds(): Promise<string[]> {
    return (await readdir(join(this.root, 'containers'))).filter((n) => !n.startsWith('.'));
  }

  async readSnapshotMeta(chainId: Digest): Promise<unknown> {
    return JSON.parse(await readFile(join(this.snapshotDir(chainId), 'snapshot.json'), 'utf8'));
  }
}

/** util-linux's mount/umount by absolute path where they are there: no PATH search per container. */
let mountDir: Promise<string> | undefined;
async function mountBinary(name: 'mount' | 'umount'): Promise<string> {
  mountDir ??= stat('/usr/bin/mount').then(
    (s) => (s.isFile() ? '/usr/bin/' : ''),
    () => '',
  );
  return `${await mountDir}${name}`;
}

function idMapSuffix(idMap: IdMap | undefined): string {
  if (!idMap) return '';
  return `-${createHash('sha256')
    .update(JSON.stringify([idMap.uidMappings, idMap.gidMappings]))
    .digest('hex')
    .slice(0, 12)}`;
}

/** Container uid/gid 0 as the host sees them through the map. */
export function mappedRoot(idMap: IdMap): { uid: number; gid: number } {
  const map = (ms: IdMap['uidMappings']): number => {
    const m = ms.find((x) => x.containerID <= 0 && 0 < x.containerID + x.size);
    if (!m) throw new StevedoreError('INVALID_ID_MAP', 'the id map does not map container id 0');
    return m.hostID - m.containerID;
  };
  return { uid: map(idMap.uidMappings), gid: map(idMap.gidMappings) };
}

async function chownToMappedRoot(path: string, idMap: IdMap): Promise<void> {
  const { uid, gid } = mappedRoot(idMap);
  await chown(path, uid, gid);
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** `cp -a` keeps owners, modes, setuid bits, xattrs, links and times; reflinks where the fs can. */
async function copyTree(from: string, to: string): Promise<void> {
  await run('cp', ['-a', '--reflink=auto', '--', from, to], { maxBuffer: 16 * 1024 * 1024 });
}
