/**
 * containers-policy.json(5), as containers/image reads it: a global `default`, and per-transport
 * scopes, each naming a list of requirements that must all accept an image.
 */

/** How the identity claimed by a signature must relate to the image being checked. */
export type SignedIdentity =
  | { type: 'matchExact' }
  | { type: 'matchRepoDigestOrExact' }
  | { type: 'matchRepository' }
  | { type: 'exactReference'; dockerReference: string }
  | { type: 'exactRepository'; dockerRepository: string }
  | { type: 'remapIdentity'; prefix: string; signedPrefix: string };

export interface FulcioRequirement {
  caPath?: string;
  /** PEM bytes (the JSON carries them base64-encoded). */
  caData?: Buffer;
  oidcIssuer: string;
  subjectEmail: string;
}

export interface SigstoreSignedRequirement {
  type: 'sigstoreSigned';
  keyPath?: string;
  keyPaths?: string[];
  /** PEM bytes (the JSON carries them base64-encoded). */
  keyData?: Buffer;
  keyDatas?: Buffer[];
  fulcio?: FulcioRequirement;
  rekorPublicKeyPath?: string;
  rekorPublicKeyPaths?: string[];
  rekorPublicKeyData?: Buffer;
  rekorPublicKeyDatas?: Buffer[];
  signedIdentity: SignedIdentity;
}

export interface SignedByRequirement {
  type: 'signedBy';
  keyType: 'GPGKeys' | 'signedByGPGKeys' | 'X509Certificates' | 'signedByX509CAs';
  keyPath?: string;
  keyPaths?: string[];
  keyData?: Buffer;
  signedIdentity: SignedIdentity;
}

export type PolicyRequirement =
  | { type: 'insecureAcceptAnything' }
  | { type: 'reject' }
  | SignedByRequirement
  | { type: 'signedBaseLayer'; baseLayerIdentity: SignedIdentity }
  | SigstoreSignedRequirement;

export interface Policy {
  default: PolicyRequirement[];
  /** transport name → scope ("" is the transport's default) → requirements. */
  transports: Record<string, Record<string, PolicyRequirement[]>>;
}

/** The decision for one image: accepted, or refused with a reason a user can act on. */
export interface PolicyDecision {
  allowed: boolean;
  reason: string;
  /** The scope whose requirements applied (`docker:registry/repo`, `docker:""`, or `default`). */
  scope: string;
}
