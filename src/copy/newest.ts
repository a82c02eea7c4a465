/**
 * "The N newest tags" by the image's creation time (the config's `created`), for selections that
 * have no version order (ImageMirror `tags.newest` without `tags.semver`). A tag costs a HEAD (or a
 * local read) for its digest; the creation time is read once per digest (manifest, and for an index
 * its first platform image, then the config) and remembered for the life of the process: content
 * under a digest never changes, so a controller's later runs pay the HEADs only.
 */
import type { Digest } from '../oci/digest.js';
import { MAX_CONFIG_BYTES, parseConfig } from '../oci/config.js';
import { parseManifest } from '../oci/manifest.js';
import { isIndexMediaType } from '../oci/mediatype.js';
import type { ImageSource, OpOptions } from '../transports/types.js';
import { mapLimit } from '../util/pool.js';
import { streamToBuffer } from '../util/streams.js';

/** Digest → creation time (ms since the epoch; NaN when the image states none). Bounded: oldest entries go first. */
const createdByDigest = new Map<Digest, number>();
const CACHE_LIMIT = 50_000;

function remember(digest: Digest, ms: number): void {
  if (createdByDigest.size >= CACHE_LIMIT) createdByDigest.delete(createdByDigest.keys().next().value!);
  createdByDigest.set(digest, ms);
}

/** The creation time an image (or an index, by its first platform image) states; NaN if none. */
async function createdOf(src: ImageSource, opts: OpOptions): Promise<{ digest: Digest; ms: number }> {
  const top = await src.getManifest(undefined, opts);
  const known = createdByDigest.get(top.digest);
  if (known !== undefined) return { digest: top.digest, ms: known };
  let parsed = parseManifest(top.bytes, top.mediaType);
  if (parsed.kind === 'index') {
    // Attestation manifests (platform unknown/unknown) carry no image config worth reading.
    const child = parsed.index.manifests.find((m) => !isIndexMediaType(m.mediaType) && m.platform?.os !== 'unknown') ?? parsed.index.manifests[0];
    if (!child) return { digest: top.digest, ms: Number.NaN };
    const raw = await src.getManifest(child.digest, opts);
    parsed = parseManifest(raw.bytes, raw.mediaType);
    if (parsed.kind === 'index') return { digest: top.digest, ms: Number.NaN };
  }
  const config = parseConfig(await streamToBuffer(await src.getBlob(parsed.manifest.config, opts), MAX_CONFIG_BYTES, `config of ${src.name}`));
  return { digest: top.digest, ms: config.created ? Date.parse(config.created) : Number.NaN };
}

/**
 * The `n` tags whose images were created last, newest first; tags whose image states no creation
 * time come after every dated one (in their given order). `open` gives a source for one tag.
 */
export async function newestByCreation(
  tags: readonly string[],
  n: number,
  open: (tag: string) => Promise<ImageSource>,
  opts: OpOptions & { parallel?: number } = {},
): Promise<string[]> {
  if (n <= 0 || tags.length === 0) return [];
  const times = await mapLimit(tags, opts.parallel ?? 8, async (tag) => {
    const src = await open(tag);
    try {
      const digest = await src.currentDigest?.(opts);
      const cached = digest ? createdByDigest.get(digest) : undefined;
      if (cached !== undefined) return cached;
      const { digest: read, ms } = await createdOf(src, opts);
      remember(read, ms);
      return ms;
    } finally {
      await src.close();
    }
  });
  const order = tags.map((tag, i) => ({ tag, i, ms: times[i]! }));
  order.sort((a, b) => {
    const an = Number.isNaN(a.ms);
    const bn = Number.isNaN(b.ms);
    if (an !== bn) return an ? 1 : -1;
    return an ? a.i - b.i : b.ms - a.ms || a.i - b.i;
  });
  return order.slice(0, n).map((o) => o.tag);
}
