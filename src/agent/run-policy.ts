/**
 * The node's signature policy (a containers-policy.json, as CRI-O and Podman read
 * /etc/containers/policy.json) applied to a run's image before anything is pulled. The policy
 * judges the reference the run names, at its registry, with the run's pull credentials; the pull
 * that follows is pinned to the digest that was judged, so a tag moved in between cannot slip an
 * unchecked image in.
 */
import { hostPlatform } from '../oci/platform.js';
import { parseReference, referenceName } from '../oci/reference.js';
import { evaluatePolicy } from '../policy/image-policy.js';
import type { Policy } from '../policy/types.js';
import type { TransportContext } from '../transports/types.js';

export type RunPolicyVerdict =
  /** `pull`: what to pull (the judged digest, when the policy had to read the image). */
  { allowed: true; pull: string; reason: string } | { allowed: false; reason: string };

export async function judgeRunImage(policy: Policy, image: string, context: TransportContext | undefined, signal?: AbortSignal): Promise<RunPolicyVerdict> {
  const name = image.replace(/^docker:\/\//, '');
  const decision = await evaluatePolicy(policy, `docker://${name}`, { context, platforms: [hostPlatform()], signal });
  if (!decision.allowed) return { allowed: false, reason: decision.reason };
  // reject / insecureAcceptAnything decide without reading the image: nothing to pin.
  const pull = decision.digest ? `${referenceName(parseReference(name))}@${decision.digest}` : name;
  return { allowed: true, pull, reason: decision.reason };
}
