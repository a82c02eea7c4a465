/**
 * Rebuild when a base image moves (`spec.rebuild.onBaseImageChange`): the base images of a build
 * are resolved to digests with a HEAD request each when its Pod is created (recorded in
 * status.baseImages), and polled with HEAD on `spec.rebuild.interval` once it is done; a digest that
 * changed starts a new build. Resolving before the build starts errs on the safe side: a base that
 * moves while the build pulls it is seen as moved at the next poll, and built once more.
 */
import type { ImageBuild } from '../k8s/api/imagebuild.js';
import { parseContainerfile } from '../build/containerfile/parser.js';
import { planStages } from '../build/containerfile/stages.js';
import { parseReference, referenceTarget } from '../oci/reference.js';
import { headManifest } from '../registry/manifests.js';
import { registryClientFor } from '../transports/docker.js';
import type { TransportContext } from '../transports/types.js';
import { parseDuration } from '../util/duration.js';

export interface BaseImage {
  name: string;
  digest: string;
}

/** Default poll interval of spec.rebuild.interval. */
const DEFAULT_BASE_POLL = '10m';
/** The shortest poll interval a tenant gets unless the administrator allows less (controller option). */
const DEFAULT_MIN_BASE_POLL_MS = 60_000;

export function wantsBaseRebuild(spec: ImageBuild['spec']): boolean {
  return spec.rebuild?.onBaseImageChange === true;
}

/** spec.rebuild.interval, never shorter than the administrator's minimum (a tenant cannot make the controller hammer a registry). */
export function basePollMs(spec: ImageBuild['spec'], minMs = DEFAULT_MIN_BASE_POLL_MS): number {
  return Math.max(parseDuration(spec.rebuild?.interval ?? DEFAULT_BASE_POLL), minMs);
}

/**
 * The registry images the build's FROM lines name (build args applied, stages and scratch left
 * out), when the controller can read the Containerfile: inline sources. Undefined otherwise (the
 * build Pod reports them with its result).
 */
export function knownBaseNames(spec: ImageBuild['spec']): string[] | undefined {
  const text = spec.source.inline?.containerfile;
  if (text === undefined) return undefined;
  const plan = planStages(parseContainerfile(text, { file: 'spec.source.inline.containerfile' }), {
    ...(spec.target ? { target: spec.target } : {}),
    buildArgs: Object.fromEntries((spec.buildArgs ?? []).map((a) => [a.name, a.value])),
  });
  const names = new Set<string>();
  for (const s of plan.stages) if (s.base.kind === 'image') names.add(s.base.ref);
  return [...names];
}

/**
 * The digest each name resolves to now (HEAD; nothing is downloaded). A name pinned by digest cannot
 * move and is left out; a name the registry does not have is left out too (the build reports that).
 */
export async function resolveBases(
  names: readonly string[],
  contextFor: (registry: string) => Promise<TransportContext>,
  signal?: AbortSignal,
): Promise<BaseImage[]> {
  const out: BaseImage[] = [];
  for (const name of names) {
    const ref = parseReference(name);
    if (ref.digest) continue;
    const client = registryClientFor(ref, await contextFor(ref.registry));
    try {
      const head = await headManifest(client, ref.repository, referenceTarget(ref), { signal });
      if (head) out.push({ name, digest: head.digest });
    } finally {
      await client.close();
    }
  }
  return out;
}

/** The recorded bases whose name now resolves to another digest. */
export async function movedBases(
  recorded: readonly BaseImage[],
  contextFor: (registry: string) => Promise<TransportContext>,
  signal?: AbortSignal,
): Promise<{ name: string; from: string; to: string }[]> {
  const now = await resolveBases(
    recorded.map((b) => b.name),
    contextFor,
    signal,
  );
  const moved: { name: string; from: string; to: string }[] = [];
  for (const b of recorded) {
    const to = now.find((n) => n.name === b.name)?.digest;
    if (to && to !== b.digest) moved.push({ name: b.name, from: b.digest, to });
  }
  return moved;
}
