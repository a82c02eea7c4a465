/**
 * A copy by reference: open both ends, check the policy, copy (image.ts), carry signatures and
 * attachments where both ends can hold them, close. The pipeline itself is re-exported from here.
 */
import { isIndexMediaType } from '../oci/mediatype.js';
import { hostPlatform } from '../oci/platform.js';
import type { Policy } from '../policy/types.js';
import type { TransportContext, TransportReference } from '../transports/types.js';
import { attachmentDigests, copyAttachments } from './attachments.js';
import { layoutAttachmentCarrier } from './layout-attachments.js';
import { copyImage, type CopyOptions, type CopyResult } from './image.js';

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

/**
 * Opens both ends by reference, checks the policy (if any), copies, carries the image's
 * signatures and attachments (registry to registry, unless told to remove them), and closes both
 * ends whatever happens.
 */
export async function copyReference(srcRef: TransportReference, destRef: TransportReference, opts: CopyReferenceOptions = {}): Promise<CopyResult> {
  if (opts.policy) await enforcePolicy(opts.policy, srcRef, opts);
  const src = await srcRef.newSource(opts.srcContext);
  try {
    const dest = await destRef.newDestination(opts.destContext);
    try {
      // Between a registry and an OCI layout or archive, attachments travel as ref names (layout-attachments.ts).
      const carrier = opts.signatures !== 'remove' ? layoutAttachmentCarrier(src, dest, { signal: opts.signal }) : undefined;
      const result = await copyImage(src, dest, carrier?.beforeCommit ? { ...opts, beforeCommit: carrier.beforeCommit } : opts);
      await carrier?.afterCommit?.(result);
      // Both ends must hold attachments (a registry repository each): a capability, not a transport test.
      if (opts.signatures !== 'remove' && src.attachmentStore && dest.attachmentStore) {
        const top = isIndexMediaType(result.mediaType) ? await src.getManifest(undefined, { signal: opts.signal }) : undefined;
        const digests = top ? attachmentDigests(top, result.digest) : [result.digest];
        result.attachments = await copyAttachments(src.attachmentStore, dest.attachmentStore, digests, { signal: opts.signal, jobs: opts.jobs });
      }
      return result;
    } finally {
      await dest.close();
    }
  } finally {
    await src.close();
  }
}
