/**
 * Materialises a run's volumes on the node, under `<store>/agent/volumes/<run uid>/<volume>`:
 * emptyDir as a directory (or a tmpfs for medium Memory), configMap and secret as files written
 * from the objects' keys. They are bind-mounted into each attempt and removed with the run.
 */
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, normalize, sep } from 'node:path';
import type { ContainerRunSpec } from '../k8s/api/containerrun.js';
import type { BindMount } from '../runtime/spec.js';
import type { ConfigSources } from './config-sources.js';
import { ConfigSourceError } from './config-sources.js';

export interface VolumeMounts {
  binds: BindMount[];
  /** `--tmpfs`-style entries (`/path:options`) for emptyDir medium Memory. */
  tmpfs: string[];
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
  if (n.startsWith(sep) || n.split(sep).includes('..')) throw new ConfigSourceError(`${what}: path "${path}" leaves the volume`);
  return n;
}

async function writeKeys(dir: string, keys: Map<string, Buffer>, items: { key: string; path: string }[] | undefined, what: string): Promise<void> {
  const chosen = items && items.length > 0 ? items.map((i) => ({ key: i.key, path: i.path })) : [...keys.keys()].map((k) => ({ key: k, path: k }));
  for (const { key, path } of chosen) {
    const value = keys.get(key);
    if (value === undefined) throw new ConfigSourceError(`${what} has no key "${key}"`);
    const file = join(dir, safeRelative(path, what));
    await mkdir(dirname(file), { recursive: true, mode: 0o755 });
    // World-readable like the kubelet's default mode 0644: the container's user may be anyone.
    await writeFile(file, value, { mode: 0o644 });
  }
}

/** Writes every volume (fresh for each start, so changed ConfigMaps are picked up) and returns the mounts. */
export async function prepareVolumes(spec: ContainerRunSpec, dir: string, sources: ConfigSources): Promise<VolumeMounts> {
  const out: VolumeMounts = { binds: [], tmpfs: [] };
  for (const v of spec.volumes ?? []) {
    const vdir = join(dir, v.name);
    if (v.emptyDir?.medium === 'Memory') {
      const size = v.emptyDir.sizeLimit !== undefined ? `,size=${quantityBytes(v.emptyDir.sizeLimit)}` : '';
      out.tmpfs.push(`${v.mountPath}:rw,nosuid,nodev${size}${v.readOnly ? ',ro' : ''}`);
      continue;
    }
    if (v.emptyDir) {
      // An emptyDir keeps its content across restarts of the run (as in a Pod).
      await mkdir(vdir, { recursive: true });
      await chmod(vdir, 0o777); // any container user may write, as a kubelet's emptyDir
    } else if (v.configMap) {
      await rm(vdir, { recursive: true, force: true });
      await mkdir(vdir, { recursive: true, mode: 0o755 });
      const keys = await sources.required('ConfigMap', v.configMap.name, v.configMap.optional);
      await writeKeys(vdir, keys, v.configMap.items, `ConfigMap ${v.configMap.name}`);
    } else if (v.secret) {
      await rm(vdir, { recursive: true, force: true });
      await mkdir(vdir, { recursive: true, mode: 0o755 });
      const keys = await sources.required('Secret', v.secret.secretName, v.secret.optional);
      await writeKeys(vdir, keys, v.secret.items, `Secret ${v.secret.secretName}`);
    }
    out.binds.push({ source: vdir, destination: v.mountPath, readonly: v.readOnly === true || !!v.configMap || !!v.secret });
  }
  return out;
}
