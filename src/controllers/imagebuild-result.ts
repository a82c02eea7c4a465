/**
 * Reads a finished (or stuck) build Pod: the phase, the source step's commit, and the builder's
 * result from the build container's termination message. A message that is not the builder's JSON
 * (it crashed, was OOM-killed, or the image is not Stevedore) still gives a Failed outcome with
 * the exit code and the log tail the kubelet put there.
 */
import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node';

export interface BuildSuccess {
  image: string;
  digest: string;
  size?: number;
  platforms?: { platform: string; digest: string }[];
  /** The cosign `.sig` manifest, when the build signed the image. */
  signatureDigest?: string;
  attestations?: { kind: string; predicateType: string; digest: string; subject?: string }[];
  /** The base images the build resolved (FROM, by tag), when the builder reports them. */
  baseImages?: { name: string; digest: string }[];
}

export interface BuildFailure {
  reason: string;
  message: string;
}

export type PodOutcome =
  | { state: 'pending'; message: string }
  | { state: 'running'; sourceCommit?: string }
  | { state: 'succeeded'; result: BuildSuccess; sourceCommit?: string }
  | { state: 'failed'; failure: BuildFailure; sourceCommit?: string };

const DIGEST = /^sha256:[0-9a-f]{64}$/;

function parseJson(text: string | undefined): Record<string, unknown> | undefined {
  if (!text) return undefined;
  try {
    const v = JSON.parse(text.trim()) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function asFailure(doc: Record<string, unknown> | undefined): BuildFailure | undefined {
  const e = doc?.error as { reason?: unknown; message?: unknown } | undefined;
  if (!e || typeof e !== 'object') return undefined;
  return {
    reason: typeof e.reason === 'string' && /^[A-Za-z][A-Za-z0-9]*$/.test(e.reason) ? e.reason : 'Error',
    message: typeof e.message === 'string' ? e.message : JSON.stringify(e),
  };
}

/** The builder's success document, checked field by field (it crosses a trust boundary: the Pod). */
export function parseBuildResult(text: string | undefined): BuildSuccess | BuildFailure | undefined {
  const doc = parseJson(text);
  if (!doc) return undefined;
  const failure = asFailure(doc);
  if (failure) return failure;
  if (typeof doc.digest !== 'string' || !DIGEST.test(doc.digest)) return undefined;
  const out: BuildSuccess = { image: typeof doc.image === 'string' ? doc.image : '', digest: doc.digest };
  if (typeof doc.size === 'number' && Number.isSafeInteger(doc.size) && doc.size >= 0) out.size = doc.size;
  if (Array.isArray(doc.platforms)) {
    out.platforms = doc.platforms
      .filter(
        (p): p is { platform: string; digest: string } =>
          typeof p === 'object' &&
          p !== null &&
          typeof (p as { platform?: unknown }).platform === 'string' &&
          typeof (p as { digest?: unknown }).digest === 'string' &&
          DIGEST.test((p as { digest: string }).digest),
      )
      .map((p) => ({ platform: p.platform, digest: p.digest }));
  }
  if (typeof doc.signatureDigest === 'string' && DIGEST.test(doc.signatureDigest)) out.signatureDigest = doc.signatureDigest;
  if (Array.isArray(doc.attestations)) {
    out.attestations = [];
    for (const a of doc.attestations.slice(0, 16) as Record<string, unknown>[]) {
      if (typeof a !== 'object' || a === null) continue;
      const { kind, predicateType, digest, subject } = a;
      if ((kind !== 'sbom' && kind !== 'provenance') || typeof predicateType !== 'string' || predicateType.length > 256) continue;
      if (typeof digest !== 'string' || !DIGEST.test(digest)) continue;
      out.attestations.push({ kind, predicateType, digest, ...(typeof subject === 'string' && DIGEST.test(subject) ? { subject } : {}) });
    }
  }
  if (Array.isArray(doc.baseImages)) {
    out.baseImages = [];
    for (const b of doc.baseImages.slice(0, 32) as Record<string, unknown>[]) {
      if (typeof b !== 'object' || b === null) continue;
      if (typeof b.name !== 'string' || b.name.length === 0 || b.name.length > 512) continue;
      if (typeof b.digest !== 'string' || !DIGEST.test(b.digest)) continue;
      out.baseImages.push({ name: b.name, digest: b.digest });
    }
  }
  return out;
}

/** The bases several Pods of one build reported (one per platform), once per name. */
export function reportedBases(results: readonly BuildSuccess[]): { name: string; digest: string }[] {
  const out = new Map<string, { name: string; digest: string }>();
  for (const r of results) for (const b of r.baseImages ?? []) if (!out.has(b.name)) out.set(b.name, b);
  return [...out.values()];
}

function terminatedOf(s: V1ContainerStatus | undefined) {
  return s?.state?.terminated ?? undefined;
}

/** A non-JSON termination (crash, OOM, signal): the reason and what the kubelet recorded. */
function crashFailure(container: string, s: V1ContainerStatus): BuildFailure {
  const t = terminatedOf(s)!;
  const why = t.reason && t.reason !== 'Error' ? t.reason : `exit code ${t.exitCode}`;
  const tail = (t.message ?? '').trim();
  return {
    reason: t.reason === 'OOMKilled' ? 'OOMKilled' : 'Error',
    message: `${container} container failed (${why})${tail ? `: ${tail}` : ''}`,
  };
}

export function podOutcome(pod: V1Pod): PodOutcome {
  const inits = pod.status?.initContainerStatuses ?? [];
  const source = inits.find((s) => s.name === 'source');
  const sourceDoc = parseJson(terminatedOf(source)?.message);
  const sourceCommit = typeof sourceDoc?.sourceCommit === 'string' && sourceDoc.sourceCommit ? sourceDoc.sourceCommit : undefined;
  const withCommit = <T extends object>(o: T) => (sourceCommit ? { ...o, sourceCommit } : o);

  // An init container that failed ends the Pod (restartPolicy Never): its result says why.
  for (const s of inits) {
    const t = terminatedOf(s);
    if (t && t.exitCode !== 0) {
      const failure = asFailure(parseJson(t.message)) ?? crashFailure(s.name, s);
      return withCommit({
        state: 'failed' as const,
        failure: s.name === 'source' && failure.reason === 'Error' ? { ...failure, reason: 'SourceUnavailable' } : failure,
      });
    }
  }
  const build = (pod.status?.containerStatuses ?? []).find((s) => s.name === 'build');
  const t = terminatedOf(build);
  if (t) {
    const parsed = parseBuildResult(t.message);
    if (t.exitCode === 0) {
      if (parsed && 'digest' in parsed) return withCommit({ state: 'succeeded' as const, result: parsed });
      return withCommit({
        state: 'failed' as const,
        failure: { reason: 'Error', message: `build container exited 0 without a result (termination message: ${(t.message ?? '').slice(0, 500) || 'empty'})` },
      });
    }
    if (parsed && 'reason' in parsed) return withCommit({ state: 'failed' as const, failure: parsed });
    return withCommit({ state: 'failed' as const, failure: crashFailure('build', build!) });
  }
  const phase = pod.status?.phase;
  if (phase === 'Failed') {
    // The kubelet ended the Pod without a container result (activeDeadlineSeconds, eviction).
    const reason = pod.status?.reason === 'DeadlineExceeded' ? 'DeadlineExceeded' : 'Error';
    return withCommit({
      state: 'failed' as const,
      failure: { reason, message: pod.status?.message ?? `build Pod failed (${pod.status?.reason ?? 'no reason given'})` },
    });
  }
  if (phase === 'Running' || inits.some((s) => s.state?.running)) return withCommit({ state: 'running' as const });
  const waiting = [...inits, ...(pod.status?.containerStatuses ?? [])].find((s) => s.state?.waiting?.reason);
  const w = waiting?.state?.waiting;
  return { state: 'pending', message: w ? `${waiting!.name}: ${w.reason}${w.message ? `: ${w.message}` : ''}` : 'waiting for the build Pod to start' };
}
