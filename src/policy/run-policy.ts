import { hostPlatform } from '../oci/platform.js';
import type { TransportContext } from '../transports/types.js';
import { evaluatePolicy, PolicyDeniedError } from './image-policy.js';
import { loadPolicy } from './parse.js';

/**
 * `run --policy FILE`: the image (its manifest for this host's platform, or the index that lists
 * it) must be accepted at its source before anything is pulled or started; a refusal throws
 * PolicyDeniedError (reason PolicyDenied) and nothing runs.
 */
export async function enforceRunPolicy(policyFile: string, image: string, context?: TransportContext): Promise<void> {
  const policy = await loadPolicy(policyFile);
  const decision = await evaluatePolicy(policy, image, { platforms: [hostPlatform()], context });
  if (!decision.allowed) throw new PolicyDeniedError(decision.reason);
}
