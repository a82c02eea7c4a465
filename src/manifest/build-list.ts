/**
 * `build --manifest LIST` (buildah's): the images a build made are added to a manifest list,
 * created when missing. The build writes them (layers compressed, as a push would send them) to a
 * scratch layout; from there they are added as `manifest add --all` adds an index's images. An
 * entry the list already had for the same platform is dropped, so building again updates the list
 * instead of leaving two images for one platform.
 */
import type { Digest } from '../oci/digest.js';
import { formatPlatform } from '../oci/platform.js';
import { addToList, createList, readList, removeFromList, type ListLocation } from './list.js';

export async function addBuiltImages(
  loc: ListLocation,
  built: string,
  opts: { storeRoot: string; signal?: AbortSignal },
): Promise<{ list: Digest; added: { digest: Digest; platform: string }[]; replaced: Digest[] }> {
  await createList(loc, { amend: true });
  const before = (await readList(loc)).index.manifests;
  let { list, added } = await addToList(loc, built, { all: true, storeRoot: opts.storeRoot, ...(opts.signal ? { signal: opts.signal } : {}) });
  const entries = (await readList(loc)).index.manifests.filter((m) => added.includes(m.digest));
  const platforms = new Set(entries.flatMap((m) => (m.platform ? [formatPlatform(m.platform)] : [])));
  const replaced: Digest[] = [];
  for (const old of before) {
    if (added.includes(old.digest) || !old.platform || !platforms.has(formatPlatform(old.platform))) continue;
    list = await removeFromList(loc, old.digest);
    replaced.push(old.digest);
  }
  return { list, added: entries.map((m) => ({ digest: m.digest, platform: m.platform ? formatPlatform(m.platform) : 'unknown' })), replaced };
}
