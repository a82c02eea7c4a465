/**
 * Materialises a run's volumes on the node, under `<store>/agent/volumes/<run uid>/<volume>`, as
 * the kubelet does:
 * - configMap and secret: files written from the objects' keys into a tmpfs of their own (never on
 *   the node's disk), configMap files mode 0644, secret files 0400 owned by the run's user (its
 *   numeric `spec.user`, else the container's root), directories 0755; rewritten for each attempt
 *   and unmounted when the run ends.
 * - emptyDir: a directory on disk, kept across the attempts of the run (as in a Pod), or a tmpfs
 *   mounted by the runtime for medium Memory, its size capped by sizeLimit.
 * They are bind-mounted into each attempt; `releaseVolumes` unmounts and removes them.
 *
 * Nothing here builds a mount option or path from text the spec gives without checking it: volume
 * names are DNS labels, mount paths absolute with no `:`, `,` or `..`, key paths relative and inside.
 */
import { chmod, chown, lstat, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, normalize, posix, sep } from 'node:path';
import type { ContainerRunSpec } from '../k8s/api/containerrun.js';
import { mountTmpfs, unmountAll } from '../runtime/mounts.js';
import type { BindMount, TmpfsMount } from '../runtime/spec.js';
import type { IdMapping } from '../runtime/unpack/index.js';
import type { ConfigSources } from './config-sources.js';
import { ConfigSourceError } from './config-sources.js';

export interface VolumeMounts {
  binds: BindMount[];
  /** emptyDir medium Memory: a tmpfs the runtime mounts at the path. */
  tmpfs: TmpfsMount[];
}

export interface VolumeOptions {
  /** The run's user namespace (files are owned by its ids); none: the node's ids. */
  idMap?: { uidMappings: IdMapping[]; gidMappings: IdMapping[] };
  /** The run's `spec.user`: a numeric uid[:gid] owns the secret files. */
  user?: string;
  /** Put configMap and secret files on a tmpfs (default true; needs CAP_SYS_ADMIN in the agent's mount namespace). */
  tmpfs?: boolean;
}

export function runVolumesDir(storeRoot: string, uid: string): string {
  return join(storeRoot, 'agent', 'volumes', uid);
}

/** Kubernetes quantities (`64Mi`, `1G`, `1000`) in bytes, for tmpfs size options. */
export function quantityBytes(q: string | number): number {
  if (typeof q === 'number') return q;
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q.trim());
  if (!m) throw new ConfigSourceError(`invalid quantity "${q}"`);
  const mult: Record<string, number> = { '': 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Math.floor(Number(m[1]) * mult[m[2] ?? '']!);
}

/** A key's relative path must stay inside the volume directory. */
function safeRelative(path: string, what: string): string {
  const n = normalize(path);
  if (n.startsWith(sep) || path.split('/').includes('..') || n.split(sep).includes('..'))
    throw new ConfigSourceError(`${what}: path "${path}" leaves the volume`, 'InvalidSpec');
  return n;
}

/** A container path that may go into a mount list: absolute, no `..` element, no `:` or `,`. */
function safeMountPath(path: string, volume: string): string {
  if (!path.startsWith('/') || /[:,\0]/.test(path) || path.split('/').includes('..')) {
    throw new ConfigSourceError(`volume ${volume}: mountPath "${path}" must be absolute, without ":", "," or ".." elements`, 'InvalidSpec');
  }
  return posix.normalize(path);
}

function mapId(maps: readonly IdMapping[] | undefined, id: number): number {
  if (!maps) return id;
  const m = maps.find((x) => x.containerID <= id && id < x.containerID + x.size);
  if (!m) throw new ConfigSourceError(`id ${id} is outside the run's user namespace`, 'InvalidSpec');
  return m.hostID + (id - m.containerID);
}

/** The node ids that own secret files: the run's numeric user, else its root. */
function secretOwner(o: VolumeOptions): { uid: number; gid: number } {
  const m = /^(\d+)(?::(\d+))?$/.exec(o.user ?? '');
  const uid = m ? Number(m[1]) : 0;
  const gid = m?.[2] !== undefined ? Number(m[2]) : m ? uid : 0;
  return { uid: mapId(o.idMap?.uidMappings, uid), gid: mapId(o.idMap?.gidMappings, gid) };
}

async function writeKeys(
  dir: string,
  keys: Map<string, Buffer>,
  items: { key: string; path: string }[] | undefined,
  what: string,
  mode: number,
  owner?: { uid: number; gid: number },
): Promise<void> {
  const chosen = items && items.length > 0 ? items.map((i) => ({ key: i.key, path: i.path })) : [...keys.keys()].map((k) => ({ key: k, path: k }));
  for (const { key, path } of chosen) {
    const value = keys.get(key);
    if (value === undefined) throw new ConfigSourceError(`${what} has no key "${key}"`);
    const file = join(dir, safeRelative(path, what));
    await mkdir(dirname(file), { recursive: true, mode: 0o755 });
    await writeFile(file, value, { mode });
    await chmod(file, mode); // the umask may have taken bits away
    if (owner) await chown(file, owner.uid, owner.gid);
  }
}

/** A fresh tmpfs at dir (its earlier content gone), sized for `bytes` of files. */
async function freshTmpfs(dir: string, bytes: number, fileCount: number): Promise<void> {
  await unmountAll(dir);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o755 });
  // Room for the data, one page per file and directory, and a little slack; never more than that.
  const size = Math.max(64 * 1024, bytes + (fileCount + 16) * 4096);
  await mountTmpfs(dir, { sizeBytes: size, mode: 0o755 });
}

async function projected(
  vdir: string,
  keys: Map<string, Buffer>,
  items: { key: string; path: string }[] | undefined,
  what: string,
  mode: number,
  o: VolumeOptions,
  owner?: { uid: number; gid: number },
): Promise<void> {
  if (o.tmpfs === false) {
    await rm(vdir, { recursive: true, force: true });
    await mkdir(vdir, { recursive: true, mode: 0o755 });
  } else {
    let bytes = 0;
    for (const v of keys.values()) bytes += v.length;
    await freshTmpfs(vdir, bytes, keys.size);
  }
  await writeKeys(vdir, keys, items, what, mode, owner);
}

/** Writes every volume (fresh for each start, so changed ConfigMaps are picked up) and returns the mounts. */
export async function prepareVolumes(spec: ContainerRunSpec, dir: string, sources: ConfigSources, o: VolumeOptions = {}): Promise<VolumeMounts> {
  const out: VolumeMounts = { binds: [], tmpfs: [] };
  for (const v of spec.volumes ?? []) {
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(v.name)) throw new ConfigSourceError(`volume name "${v.name}" is not a DNS label`, 'InvalidSpec');
    const destination = safeMountPath(v.mountPath, v.name);
    const vdir = join(dir, v.name);
    if (v.emptyDir?.medium === 'Memory') {
      const options = [
        'rw',
        'nosuid',
        'nodev',
        ...(v.emptyDir.sizeLimit !== undefined ? [`size=${quantityBytes(v.emptyDir.sizeLimit)}`] : []),
        ...(v.readOnly ? ['ro'] : []),
      ];
      out.tmpfs.push({ destination, options });
      continue;
    }
    if (v.emptyDir) {
      // An emptyDir keeps its content across restarts of the run (as in a Pod).
      await mkdir(vdir, { recursive: true });
      await chmod(vdir, 0o777); // any container user may write, as a kubelet's emptyDir
    } else if (v.configMap) {
      const keys = await sources.required('ConfigMap', v.configMap.name, v.configMap.optional);
      await projected(vdir, keys, v.configMap.items, `ConfigMap ${v.configMap.name}`, 0o644, o);
    } else if (v.secret) {
      const keys = await sources.required('Secret', v.secret.secretName, v.secret.optional);
      await projected(vdir, keys, v.secret.items, `Secret ${v.secret.secretName}`, 0o400, o, secretOwner(o));
    }
    const projectedTmpfs = (!!v.configMap || !!v.secret) && o.tmpfs !== false;
    out.binds.push({
      source: vdir,
      destination,
      readonly: v.readOnly === true || !!v.configMap || !!v.secret,
      // The tmpfs's own flags, repeated for the read-only bind (locked in the run's user namespace).
      ...(projectedTmpfs ? { options: ['nosuid', 'nodev', 'noexec'] } : {}),
    });
  }
  return out;
}

/** Unmounts and removes every volume of a run (its tmpfs first: nothing of a Secret stays behind). */
export async function releaseVolumes(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const n of names) await unmountAll(join(dir, n));
  await rm(dir, { recursive: true, force: true });
}

/** Bytes a directory tree takes on disk (allocated blocks, as du counts; hard links once). */
async function diskUsage(dir: string, seen = new Set<string>()): Promise<number> {
  let total = 0;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  for (const n of names) {
    const path = join(dir, n);
    const st = await lstat(path).catch(() => undefined);
    if (!st) continue;
    const key = `${st.dev}:${st.ino}`;
    if (seen.has(key)) continue;
    seen.add(key);
    total += st.blocks * 512;
    if (st.isDirectory()) total += await diskUsage(path, seen);
  }
  return total;
}

/**
 * The first disk emptyDir (medium "") of the run that holds more than its sizeLimit, as the
 * kubelet's local storage eviction finds it; undefined when all are within their limits.
 */
export async function emptyDirOverLimit(spec: ContainerRunSpec, dir: string): Promise<string | undefined> {
  for (const v of spec.volumes ?? []) {
    if (!v.emptyDir || v.emptyDir.medium === 'Memory' || v.emptyDir.sizeLimit === undefined) continue;
    const limit = quantityBytes(v.emptyDir.sizeLimit);
    const used = await diskUsage(join(dir, v.name));
    if (used > limit) return `emptyDir volume "${v.name}" holds ${used} bytes, over its sizeLimit ${v.emptyDir.sizeLimit} (${limit} bytes)`;
  }
  return undefined;
}

/** Where the agent notes that it stopped the run's container for exceeding a limit (kept across agent restarts). */
export function evictionNote(dir: string): string {
  return join(dir, '.evicted');
}
