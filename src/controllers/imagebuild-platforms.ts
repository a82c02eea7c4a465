/**
 * Native multi-platform builds: an ImageBuild with several `platforms` runs one build Pod per
 * platform, each pinned (`kubernetes.io/os`, `kubernetes.io/arch`) to a node of that platform, when
 * every platform has a Ready node the build may use; otherwise one Pod builds them all (emulating
 * the foreign ones, today's behaviour). Each platform Pod pushes its image under a tag of its own
 * (`<tag>-<os>-<arch>[-<variant>]`); the controller then writes the index under the output tag.
 */
import { createHash } from 'node:crypto';
import type { V1Node, V1Pod, V1Taint } from '@kubernetes/client-node';
import type { ImageBuild } from '../k8s/api/imagebuild.js';
import { formatReference, parseReference, withTag } from '../oci/reference.js';
import { buildPod, type BuildPodOptions } from './imagebuild-pod.js';

/** The platform a per-platform build Pod builds. */
const LABEL_PLATFORM = 'stevedore.dev/platform';
/** On a per-platform Pod: the name of the build (the single-Pod name) it is part of. */
export const ANNOTATION_BUILD = 'stevedore.dev/build';

const ARCH_LABEL = 'kubernetes.io/arch';
const OS_LABEL = 'kubernetes.io/os';

export type PlatformPlan = { mode: 'native' } | { mode: 'single'; why: string };

/** `linux/arm/v7` → `linux-arm-v7`: a tag and name suffix. */
function platformSlug(platform: string): string {
  return platform.replaceAll('/', '-');
}

/** The Pod of one platform of the build `podName`, shortened with a hash when too long for a name. */
export function platformPodName(podName: string, platform: string): string {
  // A Pod name is a DNS subdomain: no `_` (the platform pattern allows one, e.g. linux/x86_64).
  const suffix = `-${platformSlug(platform).replaceAll('_', '-')}`;
  if (podName.length + suffix.length <= 63) return `${podName}${suffix}`;
  const hash = createHash('sha256').update(`${podName}${suffix}`).digest('hex').slice(0, 8);
  return `${podName.slice(0, 63 - suffix.length - 9).replace(/[-.]+$/, '')}-${hash}${suffix}`;
}

/** Where one platform's image is pushed: the output repository, tag `<tag>-<os>-<arch>[-<variant>]`. */
export function platformImage(outputImage: string, platform: string): string {
  const ref = parseReference(outputImage);
  const tag = `${ref.tag ?? 'latest'}-${platformSlug(platform)}`;
  // A tag is at most 128 characters: keep the platform readable and hash the rest.
  const fitted =
    tag.length <= 128
      ? tag
      : `${createHash('sha256')
          .update(ref.tag ?? '')
          .digest('hex')
          .slice(0, 16)}-${platformSlug(platform)}`;
  return formatReference(withTag({ registry: ref.registry, repository: ref.repository }, fitted));
}

function isReady(n: V1Node): boolean {
  return n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true && n.spec?.unschedulable !== true;
}

function tolerated(t: V1Taint, tolerations: ImageBuild['spec']['tolerations']): boolean {
  if (t.effect === 'PreferNoSchedule') return true;
  return (tolerations ?? []).some(
    (x) => x.key === t.key && (x.operator === 'Exists' || (x.value ?? '') === (t.value ?? '')) && (!x.effect || x.effect === t.effect),
  );
}

/** Ready, schedulable nodes this build's Pods may land on (spec.nodeSelector, taints and tolerations). */
function usableNodes(nodes: readonly V1Node[], spec: ImageBuild['spec']): V1Node[] {
  return nodes.filter(
    (n) =>
      isReady(n) &&
      Object.entries(spec.nodeSelector ?? {}).every(([k, v]) => n.metadata?.labels?.[k] === v) &&
      (n.spec?.taints ?? []).every((t) => tolerated(t, spec.tolerations)),
  );
}

/** Node label values a platform's Pod selects: `linux/arm64/v8` → os linux, arch arm64. */
function platformSelector(platform: string): Record<string, string> {
  const [os, arch] = platform.split('/') as [string, string];
  return { [OS_LABEL]: os, [ARCH_LABEL]: arch };
}

/**
 * One Pod per platform when the spec names several and each has a usable node; one Pod for all of
 * them otherwise, with the reason. `nodes` undefined: the nodes could not be listed.
 */
export function planPlatforms(spec: ImageBuild['spec'], nodes: readonly V1Node[] | undefined): PlatformPlan {
  const platforms = spec.platforms ?? [];
  if (platforms.length < 2) return { mode: 'single', why: '' };
  if (spec.signing) return { mode: 'single', why: 'signing is set: one Pod builds, signs and attests the whole index' };
  if (!nodes) return { mode: 'single', why: 'the nodes could not be listed' };
  const usable = usableNodes(nodes, spec);
  const missing = platforms.filter((p) => {
    const sel = platformSelector(p);
    return !usable.some((n) => Object.entries(sel).every(([k, v]) => n.metadata?.labels?.[k] === v));
  });
  if (missing.length) return { mode: 'single', why: `no Ready node for ${missing.join(', ')}` };
  return { mode: 'native' };
}

/** The build Pod of one platform: the build Pod of the spec narrowed to it, on a node of its kind. */
export function platformPod(ib: ImageBuild, o: BuildPodOptions, requestedAt: string | undefined, podName: string, platform: string): V1Pod {
  const narrowed: ImageBuild = {
    ...ib,
    spec: {
      ...ib.spec,
      platforms: [platform],
      output: { ...ib.spec.output, image: platformImage(ib.spec.output.image, platform) },
      nodeSelector: { ...(ib.spec.nodeSelector ?? {}), ...platformSelector(platform) },
    },
  };
  const pod = buildPod(narrowed, o, requestedAt);
  pod.metadata!.name = platformPodName(podName, platform);
  pod.metadata!.labels = { ...pod.metadata!.labels, [LABEL_PLATFORM]: platformSlug(platform) };
  pod.metadata!.annotations = { ...pod.metadata!.annotations, [ANNOTATION_BUILD]: podName, 'stevedore.dev/platform': platform };
  return pod;
}
