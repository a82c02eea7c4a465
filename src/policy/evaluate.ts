import type { KeyObject } from 'node:crypto';
import type { Digest } from '../oci/digest.js';
import { formatReference } from '../oci/reference.js';
import { loadPublicKey } from '../sign/keys.js';
import type { StoredSignature } from '../sign/signature-image.js';
import { checkSimpleSignature } from '../sign/verify.js';
import { errorMessage } from '../util/errors.js';
import { identityMatches } from './identity.js';
import { requirementsFor, scopeIdentity, type PolicySubject } from './scope.js';
import type { Policy, PolicyDecision, PolicyRequirement, SigstoreSignedRequirement } from './types.js';

/** One manifest to decide on: where it is, its digest, and (for registries) how to read its signatures. */
export interface PolicyImage {
  subject: PolicySubject;
  /** The manifest's digest; may be left out when the requirements need no signatures (reject, accept). */
  digest?: Digest;
  /** The simple-signing signatures stored for `digest`; absent for transports that carry none. */
  signatures?: (digest: Digest) => Promise<StoredSignature[]>;
}

function describe(subject: PolicySubject): string {
  return subject.transport === 'docker' && 'reference' in subject ? formatReference(subject.reference) : `${subject.transport}:${scopeIdentity(subject)}`;
}

/** The public keys a sigstoreSigned requirement names, from paths or inline PEM data. */
async function requirementKeys(req: SigstoreSignedRequirement): Promise<KeyObject[]> {
  const sources: string[] = [];
  if (req.keyPath) sources.push(req.keyPath);
  if (req.keyPaths) sources.push(...req.keyPaths);
  if (req.keyData) sources.push(req.keyData.toString('utf8'));
  if (req.keyDatas) sources.push(...req.keyDatas.map((d) => d.toString('utf8')));
  return Promise.all(sources.map((s) => loadPublicKey(s)));
}

/** One requirement for one manifest digest: undefined when it accepts, else the reason it refuses. */
async function refusal(req: PolicyRequirement, image: PolicyImage, digest: Digest | undefined): Promise<string | undefined> {
  switch (req.type) {
    case 'insecureAcceptAnything':
      return undefined;
    case 'reject':
      return 'the image is rejected by policy ("reject")';
    case 'signedBy':
      return `requirement "signedBy" (GPG/X.509 simple signing) is not supported by stevedore; use "sigstoreSigned"`;
    case 'signedBaseLayer':
      return `requirement "signedBaseLayer" is not implemented (as in containers/image, it never accepts)`;
    case 'sigstoreSigned':
      return sigstoreRefusal(req, image, digest);
  }
}

async function sigstoreRefusal(req: SigstoreSignedRequirement, image: PolicyImage, digest: Digest | undefined): Promise<string | undefined> {
  if (req.fulcio) return 'sigstoreSigned with "fulcio" (keyless) is not supported by stevedore\'s policy engine yet; use keyPath/keyData';
  if (req.rekorPublicKeyPath || req.rekorPublicKeyPaths || req.rekorPublicKeyData || req.rekorPublicKeyDatas) {
    return 'sigstoreSigned with a Rekor public key (transparency-log proof) is not supported by stevedore\'s policy engine yet';
  }
  if (!image.signatures || !digest) return `a signature was required, but ${image.subject.transport}: images carry no sigstore signatures`;
  let keys: KeyObject[];
  try {
    keys = await requirementKeys(req);
  } catch (err) {
    return `cannot load the policy's public key: ${errorMessage(err)}`;
  }
  const sigs = await image.signatures(digest);
  if (sigs.length === 0) return `a signature was required, but no signature exists for ${digest}`;
  const reasons: string[] = [];
  const intended = image.subject.transport === 'docker' && 'reference' in image.subject ? image.subject.reference : undefined;
  for (const sig of sigs) {
    try {
      const payload = checkSimpleSignature(sig, keys, { digest });
      if (!intended || !identityMatches(req.signedIdentity, intended, payload.dockerReference)) {
        reasons.push(`signature identity "${payload.dockerReference}" does not match ${intended ? formatReference(intended) : 'the image'} under signedIdentity ${req.signedIdentity.type}`);
        continue;
      }
      return undefined;
    } catch (err) {
      reasons.push(errorMessage(err));
    }
  }
  return `none of the ${sigs.length} signature(s) was accepted: ${reasons.join('; ')}`;
}

/**
 * Decides on one manifest as containers/image's PolicyContext does: pick the requirements of the
 * most specific matching scope, and accept only if every one of them accepts.
 */
export async function decide(policy: Policy, image: PolicyImage): Promise<PolicyDecision> {
  const { scope, requirements } = requirementsFor(policy, image.subject);
  for (const req of requirements) {
    const why = await refusal(req, image, image.digest);
    if (why !== undefined) return { allowed: false, reason: `${describe(image.subject)}${image.digest ? ` (${image.digest})` : ''}: ${why} [scope ${scope}]`, scope };
  }
  return { allowed: true, reason: `accepted by scope ${scope}`, scope };
}

/** Whether the requirements that apply need signatures at all (reject / accept-anything decide without reading). */
export function needsSignatures(policy: Policy, subject: PolicySubject): boolean {
  return requirementsFor(policy, subject).requirements.some((r) => r.type !== 'insecureAcceptAnything' && r.type !== 'reject');
}
