/**
 * `build --manifest LIST` (buildah's): the images a build made are added to a manifest list,
 * created when missing. The build writes them (layers compressed, as a push would send them) to a
 * scratch layout; from there they are added as `manifest add --all` adds an index's images. An
 * entry the list already had for the same platform is dropped, so building again updates the list
 * instead of leaving two images for one platform.
 */
import type { Digest } from '../oci/digest.js';
import { formatPlatform } from '../oci/platform.js';
import { addToList, createList, type ListLocation } from './list.js';

export async function addBuiltImages(
  loc: ListLocation,
  built: string,
  opts: { storeRoot: string; signal?: AbortSignal },
): Promise<{ list: Digest; added: { digest: Digest; platform: string }[]; replaced: Digest[] }> {
  await createList(loc, { amend: true });
  const { list, entries, replaced } = await addToList(loc, built, {
    all: true,
    replacePlatforms: true,
    storeRoot: opts.storeRoot,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return { list, added: entries.map((m) => ({ digest: m.digest, platform: m.platform ? formatPlatform(m.platform) : 'unknown' })), replaced };
}
