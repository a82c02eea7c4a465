/**
 * `--all-platforms` (buildah's): build for every platform all of the build's base images offer.
 * Each registry (or transport) FROM image of the stages the target needs is looked at once: an
 * index offers its children's platforms, a single image the platform its config declares. A stage
 * with its own `FROM --platform=...` does not narrow the set (it is built for that platform
 * whatever the target). The result is the platforms every base offers, in the first base's order.
 */
import { MAX_CONFIG_BYTES, parseConfig } from '../oci/config.js';
import { parseManifest } from '../oci/manifest.js';
import { isIndexMediaType } from '../oci/mediatype.js';
import { formatPlatform, normalizePlatform, type Platform } from '../oci/platform.js';
import { normaliseImageName } from '../runtime/store/names.js';
import type { TransportContext } from '../transports/types.js';
import { InvalidInputError } from '../util/errors.js';
import { streamToBuffer } from '../util/streams.js';
import { parseContainerfile, planStages } from './containerfile/index.js';

export interface AllPlatformsOptions {
  containerfile: { text: string; name: string; more?: readonly { text: string; file: string }[] };
  buildArgs?: Record<string, string>;
  target?: string;
  /** Names as the build would use them (a `--build-context NAME=docker-image://REF`, a source policy). */
  resolveName?: (name: string) => string;
  context?: TransportContext;
  signal?: AbortSignal;
}

/** The platforms one image offers: its index's children, or its config's platform. */
async function offered(ref: string, ctx: TransportContext | undefined, signal: AbortSignal | undefined): Promise<Platform[]> {
  const { parseImageName } = await import('../transports/index.js');
  const src = await parseImageName(normaliseImageName(ref).source).newSource(ctx);
  try {
    const top = await src.getManifest(undefined, signal ? { signal } : {});
    const parsed = parseManifest(top.bytes, top.mediaType);
    if (parsed.kind === 'index') {
      return parsed.index.manifests
        .filter((m) => !isIndexMediaType(m.mediaType) && m.platform && m.platform.os !== 'unknown' && m.platform.architecture !== 'unknown')
        .map((m) => normalizePlatform(m.platform!));
    }
    const cfg = parseConfig(
      await streamToBuffer(await src.getBlob(parsed.manifest.config, signal ? { signal } : {}), MAX_CONFIG_BYTES, `${ref}: image config`),
    );
    return [normalizePlatform({ os: cfg.os, architecture: cfg.architecture, ...(cfg.variant ? { variant: cfg.variant } : {}) })];
  } finally {
    await src.close();
  }
}

export async function allPlatforms(o: AllPlatformsOptions): Promise<Platform[]> {
  const cf = parseContainerfile(o.containerfile.text, { file: o.containerfile.name, ...(o.containerfile.more ? { more: o.containerfile.more } : {}) });
  const plan = planStages(cf, { ...(o.target !== undefined ? { target: o.target } : {}), ...(o.buildArgs ? { buildArgs: o.buildArgs } : {}) });
  const names: string[] = [];
  for (const s of plan.stages) {
    if (s.base.kind !== 'image' || s.platform) continue;
    const name = o.resolveName ? o.resolveName(s.base.ref) : s.base.ref;
    if (!names.includes(name)) names.push(name);
  }
  if (names.length === 0)
    throw new InvalidInputError(
      '--all-platforms: the build has no base image to take platforms from (only scratch or stages with --platform); name them with --platform',
    );
  let common: Platform[] | undefined;
  const seen: string[] = [];
  for (const name of names) {
    let these: Platform[];
    try {
      these = await offered(name, o.context, o.signal);
    } catch (err) {
      throw new InvalidInputError(`--all-platforms: reading the platforms of ${name}: ${(err as Error).message}`, { cause: err });
    }
    seen.push(`${name} (${these.map(formatPlatform).join(', ') || 'none'})`);
    const keys = new Set(these.map(formatPlatform));
    common = (common ?? these).filter((p) => keys.has(formatPlatform(p)));
  }
  const unique = [...new Map(common!.map((p) => [formatPlatform(p), p])).values()];
  if (unique.length === 0) throw new InvalidInputError(`--all-platforms: the base images offer no platform in common: ${seen.join('; ')}`);
  return unique;
}
