import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Digest } from '../oci/digest.js';
import { parseManifest } from '../oci/manifest.js';
import { isIndexMediaType } from '../oci/mediatype.js';
import { formatPlatform, platformMatches, type Platform } from '../oci/platform.js';
import type { RegistryClient } from '../registry/client.js';
import { readSignatures } from '../sign/signature-image.js';
import { DirReference } from '../transports/dir.js';
import { DockerReference, registryClientFor } from '../transports/docker.js';
import { parseImageName } from '../transports/index.js';
import type { TransportContext, TransportReference } from '../transports/types.js';
import { decide, needsSignatures, type PolicyImage } from './evaluate.js';
import type { PolicySubject } from './scope.js';
import type { Policy, PolicyDecision } from './types.js';
import { StevedoreError } from '../util/errors.js';

/** An image the policy does not accept; nothing was copied, mirrored or run. Reason `PolicyDenied`. */
export class PolicyDeniedError extends StevedoreError {
  constructor(reason: string) {
    super('POLICY_DENIED', `policy denied: ${reason}`);
  }
}

export interface ImagePolicyOptions {
  /** Credentials and TLS for reading the image and its signatures. */
  context?: TransportContext;
  /** containers-registries.d directory for lookaside signatures; default the context's, else the usual places. */
  registriesDir?: string;
  /** For an index: the platforms that will be used; default every platform it lists. */
  platforms?: Platform[];
  signal?: AbortSignal;
}

export interface ImagePolicyDecision extends PolicyDecision {
  /** The top manifest's digest, when it had to be read. */
  digest?: Digest;
  /** Per-manifest decisions, when an index's platforms were checked one by one. */
  manifests?: Array<{ digest: Digest; platform?: string; allowed: boolean; reason: string }>;
}

/** Runs `fn` once, on first use, and keeps its promise. */
function lazy<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= fn());
}

const MAX_DIR_SIGNATURES = 128;

/** A `dir:` image's simple signatures: `signature-1`, `signature-2`, … as containers/image writes them. */
async function readDirSignatures(dir: string): Promise<Array<{ location: string; bytes: Buffer }>> {
  const out: Array<{ location: string; bytes: Buffer }> = [];
  for (let i = 1; i <= MAX_DIR_SIGNATURES; i++) {
    const location = join(dir, `signature-${i}`);
    try {
      out.push({ location, bytes: await readFile(location) });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') break;
      throw err;
    }
  }
  return out;
}

/** The policy's view of a transport reference: a registry name, or the absolute path (and ref) of a local image. */
export function policySubject(ref: TransportReference): PolicySubject {
  if (ref instanceof DockerReference) return { transport: 'docker', reference: ref.ref };
  const r = ref as TransportReference & { path?: string; refName?: string };
  if (typeof r.path === 'string') return { transport: ref.transport, path: resolve(r.path), ...(r.refName ? { ref: r.refName } : {}) };
  return { transport: ref.transport, path: ref.toString() };
}

/**
 * Whether the policy lets an image be used (copied, mirrored, run): the entry point for `copy`,
 * `sync`, `run --policy` and the ImageMirror / ContainerRun controllers. Nothing is written; the
 * caller refuses before writing anything when `allowed` is false and shows `reason`.
 *
 * An index is accepted when the index itself is (a signature on its digest vouches for every
 * manifest it lists by digest), or else when every platform manifest that will be used is
 * accepted on its own; the reason names the first platform that is not.
 */
export async function evaluatePolicy(policy: Policy, image: string | TransportReference, opts: ImagePolicyOptions = {}): Promise<ImagePolicyDecision> {
  const ref = typeof image === 'string' ? parseImageName(image) : image;
  const subject = policySubject(ref);
  if (!needsSignatures(policy, subject)) {
    // reject / insecureAcceptAnything decide without reading the image.
    return decide(policy, { subject });
  }
  const src = await ref.newSource(opts.context);
  let client: RegistryClient | undefined;
  try {
    let signatures: PolicyImage['signatures'];
    let gpgSignatures: PolicyImage['gpgSignatures'];
    if (ref instanceof DockerReference) {
      const c = (client = registryClientFor(ref.ref, opts.context));
      signatures = (digest) => readSignatures(c, ref.ref.repository, digest, opts.signal);
      // Lookaside storage (registries.d, YAML) loads only when a signedBy requirement reads it.
      const registriesD = lazy(async () => (await import('../sign/registries-d.js')).loadRegistriesD(opts.registriesDir ?? opts.context?.registriesDir));
      gpgSignatures = async (digest) => {
        const { readLookasideSignatures } = await import('../sign/lookaside.js');
        return (await readLookasideSignatures(await registriesD(), ref.ref, digest, opts.signal)).map((s) => ({ location: s.url, bytes: s.bytes }));
      };
    } else if (ref instanceof DirReference) {
      gpgSignatures = async () => readDirSignatures(resolve(ref.path));
    }
    const top = await src.getManifest(undefined, { signal: opts.signal });
    const topDecision = await decide(policy, { subject, digest: top.digest, signatures, gpgSignatures });
    if (topDecision.allowed || !isIndexMediaType(top.mediaType)) return { ...topDecision, digest: top.digest };
    const parsed = parseManifest(top.bytes, top.mediaType);
    if (parsed.kind !== 'index') return { ...topDecision, digest: top.digest };
    const wanted = opts.platforms && opts.platforms.length > 0 ? opts.platforms : undefined;
    const children = parsed.index.manifests.filter((m) => !wanted || wanted.some((p) => platformMatches(m.platform, p)));
    if (children.length === 0) return { ...topDecision, digest: top.digest };
    const manifests: NonNullable<ImagePolicyDecision['manifests']> = [];
    for (const child of children) {
      const d = await decide(policy, { subject, digest: child.digest, signatures, gpgSignatures });
      manifests.push({ digest: child.digest, ...(child.platform ? { platform: formatPlatform(child.platform) } : {}), allowed: d.allowed, reason: d.reason });
    }
    const refused = manifests.find((m) => !m.allowed);
    if (refused) {
      return {
        allowed: false,
        scope: topDecision.scope,
        reason: `the index is not accepted (${topDecision.reason}) and neither is its ${refused.platform ?? refused.digest} manifest: ${refused.reason}`,
        digest: top.digest,
        manifests,
      };
    }
    return {
      allowed: true,
      scope: topDecision.scope,
      reason: `every platform manifest of the index is accepted by scope ${topDecision.scope}`,
      digest: top.digest,
      manifests,
    };
  } finally {
    await src.close();
    await client?.close();
  }
}
