/**
 * The copy pipeline, assembled once: copyBetween copies between open ends (image.ts) and carries
 * signatures and attachments where both ends can hold them; copyReference opens both ends by
 * reference, checks the policy, and closes them; sync calls copyBetween on ends it opens with a
 * pooled context. The pipeline itself is re-exported from here.
 */
import { hostPlatform } from '../oci/platform.js';
import type { Policy } from '../policy/types.js';
import type { ImageDestination, ImageSource, TransportContext, TransportReference } from '../transports/types.js';
import { attachmentDigests, copyAttachments } from './attachments.js';
import { copyImage, type CopyOptions, type CopyResult } from './image.js';
import { layoutAttachmentCarrier } from './layout-attachments.js';

export * from './image.js';

export interface CopyReferenceOptions extends CopyOptions {
  srcContext?: TransportContext;
  destContext?: TransportContext;
  /**
   * containers-policy.json the source must satisfy; checked before anything is written, and for
   * an index on every platform manifest that will be copied. A refusal is a PolicyDeniedError.
   */
  policy?: Policy;
  /**
   * Registry to registry, cosign signatures, attestations, SBOMs and OCI referrers of the copied
   * digests travel with the image (`copy`, the default) or are left behind (`remove`, skopeo's
   * --remove-signatures).
   */
  signatures?: 'copy' | 'remove';
}

/** Refuses, before anything is written, a source the policy does not accept. */
export async function enforcePolicy(policy: Policy, srcRef: TransportReference, opts: CopyReferenceOptions): Promise<void> {
  const platforms = opts.all ? undefined : opts.platforms && opts.platforms.length > 0 ? opts.platforms : [hostPlatform()];
  // The policy engine (signature verification, sigstore) loads only when a policy is given: it
  // was a fifth of the start-up of every copy and sync.
  const { evaluatePolicy, PolicyDeniedError } = await import('../policy/image-policy.js');
  const decision = await evaluatePolicy(policy, srcRef, { context: opts.srcContext, platforms, signal: opts.signal });
  if (!decision.allowed) throw new PolicyDeniedError(decision.reason);
}

export interface CopyBetweenOptions extends CopyOptions {
  /** As CopyReferenceOptions.signatures. */
  signatures?: 'copy' | 'remove';
}

/**
 * The copy once both ends are open, shared by copyReference and sync: the image (image.ts), then
 * its signatures and attachments where both ends hold them (a capability, not a transport test),
 * or as ref names where one end is an OCI layout the user named (layout-attachments.ts: sync into
 * and out of an air gap takes this path too). Opening, policy and closing are the caller's.
 */
export async function copyBetween(src: ImageSource, dest: ImageDestination, opts: CopyBetweenOptions = {}): Promise<CopyResult> {
  // Between a registry and an OCI layout or archive the user named, attachments travel as ref names.
  const carrier = opts.signatures !== 'remove' ? layoutAttachmentCarrier(src, dest, { signal: opts.signal }) : undefined;
  const result = await copyImage(src, dest, carrier?.beforeCommit ? { ...opts, beforeCommit: carrier.beforeCommit } : opts);
  await carrier?.afterCommit?.(result);
  if (opts.signatures !== 'remove' && src.attachmentStore && dest.attachmentStore) {
    // The written top manifest says it all: the source's is not read again.
    const digests = attachmentDigests(result.manifest, result.digest);
    result.attachments = await copyAttachments(src.attachmentStore, dest.attachmentStore, digests, { signal: opts.signal, jobs: opts.jobs });
  }
  return result;
}

/**
 * Opens both ends by reference, checks the policy (if any), copies with copyBetween (signatures
 * and attachments included, registry to registry, unless told to remove them), and closes both
 * ends whatever happens. Contexts that carry a client pool (`clients`) share its registry clients.
 */
export async function copyReference(srcRef: TransportReference, destRef: TransportReference, opts: CopyReferenceOptions = {}): Promise<CopyResult> {
  if (opts.policy) await enforcePolicy(opts.policy, srcRef, opts);
  const src = await srcRef.newSource(opts.srcContext);
  try {
    const dest = await destRef.newDestination(opts.destContext);
    try {
      return await copyBetween(src, dest, opts);
    } finally {
      await dest.close();
    }
  } finally {
    await src.close();
  }
}
