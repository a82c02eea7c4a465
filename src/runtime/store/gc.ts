import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Digest } from '../../oci/digest.js';
import { digestHex } from '../../oci/digest.js';
import { parseManifest } from '../../oci/manifest.js';
import type { ImageStore } from './store.js';

export interface PruneResult {
  blobs: number;
  snapshots: number;
  temps: number;
  bytes: number;
}

/** Every blob reachable from the layout's index.json: manifests, index children, configs, layers. */
async function reachableBlobs(store: ImageStore): Promise<Set<Digest>> {
  const seen = new Set<Digest>();
  const visit = async (digest: Digest, mediaType?: string): Promise<void> => {
    if (seen.has(digest)) return;
    seen.add(digest);
    if (!(await store.layout.hasBlob(digest))) return;
    const parsed = parseManifest(await store.layout.readBlob(digest), mediaType);
    if (parsed.kind === 'index') {
      for (const m of parsed.index.manifests) await visit(m.digest, m.mediaType);
    } else {
      seen.add(parsed.manifest.config.digest);
      for (const l of parsed.manifest.layers) seen.add(l.digest);
    }
  };
  for (const m of (await store.layout.readIndex()).manifests) await visit(m.digest, m.mediaType);
  return seen;
}

async function sizeOf(path: string): Promise<number> {
  const st = await stat(path).catch(() => undefined);
  if (!st) return 0;
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const name of await readdir(path).catch(() => [] as string[])) total += await sizeOf(join(path, name));
  return total;
}

/**
 * Removes what no image or container of the store uses: unreferenced blobs, snapshots of chain IDs
 * no stored image has, and abandoned unpack temp dirs. Anything younger than `graceMs` is kept, so a
 * pull or unpack running meanwhile in another process (whose blobs and snapshots are not referenced
 * yet) is left alone.
 */
export async function pruneStore(
  store: ImageStore,
  opts: { graceMs?: number; inUseSnapshots?: Iterable<string>; inUseBlobs?: Iterable<Digest> } = {},
): Promise<PruneResult> {
  const cutoff = Date.now() - (opts.graceMs ?? 60 * 60 * 1000);
  const result: PruneResult = { blobs: 0, snapshots: 0, temps: 0, bytes: 0 };
  const old = async (path: string): Promise<boolean> => ((await stat(path).catch(() => undefined))?.mtimeMs ?? Infinity) <= cutoff;

  const keepBlobs = await reachableBlobs(store);
  // Blobs no image names yet but something else holds (the layers of a working container).
  for (const d of opts.inUseBlobs ?? []) keepBlobs.add(d);
  for (const digest of await store.layout.listBlobs()) {
    if (keepBlobs.has(digest)) continue;
    const path = store.layout.blobPath(digest);
    if (!(await old(path))) continue;
    result.bytes += await sizeOf(path);
    await rm(path, { force: true });
    result.blobs++;
  }

  const keepChains = new Set<string>();
  for (const img of await store.list()) {
    const stored = await store.get(img.name).catch(() => undefined);
    for (const c of stored?.chainIds ?? []) keepChains.add(digestHex(c));
  }
  for (const s of opts.inUseSnapshots ?? []) keepChains.add(s);
  const snapRoot = join(store.root, 'snapshots');
  for (const name of await readdir(snapRoot)) {
    const path = join(snapRoot, name);
    if (name.startsWith('.tmp-')) {
      if (!(await old(path))) continue;
      result.bytes += await sizeOf(path);
      await rm(path, { recursive: true, force: true });
      result.temps++;
      continue;
    }
    const chain = name.split('-')[0]!;
    if (keepChains.has(chain) || name.startsWith('empty')) continue;
    if (!(await old(path))) continue;
    result.bytes += await sizeOf(path);
    await rm(path, { recursive: true, force: true });
    result.snapshots++;
  }
  return result;
}
