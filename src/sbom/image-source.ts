import { MAX_CONFIG_BYTES, parseConfig } from '../oci/config.js';
import type { Digest } from '../oci/digest.js';
import { parseManifest, type ImageManifest, type RawManifest } from '../oci/manifest.js';
import { formatPlatform, hostPlatform, parsePlatform, platformMatches, type Platform } from '../oci/platform.js';
import type { ImageSource } from '../transports/types.js';
import { NotFoundError } from '../util/errors.js';
import { streamToBuffer } from '../util/streams.js';

export interface ResolvedImage {
  top: RawManifest;
  raw: RawManifest;
  manifest: ImageManifest;
  platform: Platform;
}

/**
 * The image a name points at: itself, or, for an index, the image for the wanted platform (the
 * host's by default), as `inspect` and `run` choose it.
 */
export async function resolveImage(src: ImageSource, opts: { platform?: string; signal?: AbortSignal } = {}): Promise<ResolvedImage> {
  let top: RawManifest;
  try {
    top = await src.getManifest(undefined, { signal: opts.signal });
  } catch (err) {
    if ((err as { code?: string }).code === 'NOT_FOUND') throw new NotFoundError(`${src.name}: image not found, nothing to catalog`, { cause: err });
    throw err;
  }
  const want = opts.platform ? parsePlatform(opts.platform) : hostPlatform();
  let raw = top;
  for (let depth = 0; depth < 4; depth++) {
    const parsed = parseManifest(raw.bytes, raw.mediaType);
    if (parsed.kind === 'image') {
      const configBytes = await streamToBuffer(await src.getBlob(parsed.manifest.config, { signal: opts.signal }), MAX_CONFIG_BYTES, 'image config');
      let platform: Platform = want;
      try {
        const config = parseConfig(configBytes);
        platform = { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) };
      } catch {
        // Artifacts and odd configs still have layers worth cataloguing; keep the asked-for platform.
      }
      return { top, raw, manifest: parsed.manifest, platform };
    }
    const hit = parsed.index.manifests.find((m) => platformMatches(m.platform, want));
    if (!hit) throw new NotFoundError(`${src.name} has no image for ${formatPlatform(want)} (use --platform)`);
    raw = await src.getManifest(hit.digest as Digest, { signal: opts.signal });
  }
  throw new NotFoundError(`${src.name}: indexes nested too deeply`);
}
