import type { KeyObject } from 'node:crypto';
import type { Digest } from '../oci/digest.js';
import type { PublicKey } from 'openpgp';
import { formatReference, type ImageReference } from '../oci/reference.js';
import { readFile } from 'node:fs/promises';
import { verifyFulcioCertificate } from '../sign/fulcio-cert.js';
import { loadPublicKey, publicKeyPem } from '../sign/keys.js';
import { verifyRekorBundle } from '../sign/rekor-set.js';
import type { StoredSignature } from '../sign/signature-image.js';
import { checkSimpleSignature } from '../sign/verify.js';
import { errorMessage } from '../util/errors.js';
import { identityMatches } from './identity.js';
import { requirementsFor, scopeIdentity, type PolicySubject } from './scope.js';
import type { Policy, PolicyDecision, PolicyRequirement, SignedByRequirement, SigstoreSignedRequirement } from './types.js';

/** One manifest to decide on: where it is, its digest, and (for registries) how to read its signatures. */
export interface PolicyImage {
  subject: PolicySubject;
  /** The manifest's digest; may be left out when the requirements need no signatures (reject, accept). */
  digest?: Digest;
  /** The simple-signing signatures stored for `digest`; absent for transports that carry none. */
  signatures?: (digest: Digest) => Promise<StoredSignature[]>;
  /**
   * The GPG simple signatures stored for `digest` (OpenPGP messages from the lookaside store, or a
   * `dir:` image's signature-N files), untrusted; absent for transports that carry none.
   */
  gpgSignatures?: (digest: Digest) => Promise<Array<{ location: string; bytes: Buffer }>>;
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
      return signedByRefusal(req, image, digest);
    case 'signedBaseLayer':
      return `requirement "signedBaseLayer" is not implemented (as in containers/image, it never accepts)`;
    case 'sigstoreSigned':
      return sigstoreRefusal(req, image, digest);
  }
}

/** How each stored signature gets its verifying key: the policy's keys, or a Fulcio certificate it vouches for. */
interface SigstoreTrust {
  keys: KeyObject[];
  rekorKeys: KeyObject[];
  fulcio?: { caPem: string; oidcIssuer: string; subjectEmail: string };
}

async function loadTrust(req: SigstoreSignedRequirement): Promise<SigstoreTrust> {
  const rekorSources: string[] = [];
  if (req.rekorPublicKeyPath) rekorSources.push(req.rekorPublicKeyPath);
  if (req.rekorPublicKeyPaths) rekorSources.push(...req.rekorPublicKeyPaths);
  if (req.rekorPublicKeyData) rekorSources.push(req.rekorPublicKeyData.toString('utf8'));
  if (req.rekorPublicKeyDatas) rekorSources.push(...req.rekorPublicKeyDatas.map((d) => d.toString('utf8')));
  const trust: SigstoreTrust = { keys: [], rekorKeys: await Promise.all(rekorSources.map((s) => loadPublicKey(s))) };
  if (req.fulcio) {
    const caPem = req.fulcio.caData ? req.fulcio.caData.toString('utf8') : await readFile(req.fulcio.caPath!, 'utf8');
    trust.fulcio = { caPem, oidcIssuer: req.fulcio.oidcIssuer, subjectEmail: req.fulcio.subjectEmail };
  } else {
    trust.keys = await requirementKeys(req);
  }
  return trust;
}

/**
 * The keys one signature may be checked with. With a Rekor key the signature must carry a Rekor
 * bundle proving it was logged (and, with Fulcio, when); with Fulcio its certificate must chain to
 * the policy's CA and name the policy's identity at that time.
 */
function signatureKeys(sig: StoredSignature, trust: SigstoreTrust): KeyObject[] {
  const signature = Buffer.from(sig.signature, 'base64');
  if (trust.fulcio) {
    if (!sig.certificate) throw new Error('the signature carries no Fulcio certificate');
    if (!sig.rekorBundle) throw new Error('the signature carries no Rekor bundle');
    const at = verifyRekorBundle(sig.rekorBundle, trust.rekorKeys, { signature, payload: sig.payload, signerPem: sig.certificate });
    return [verifyFulcioCertificate(sig.certificate, sig.chain, trust.fulcio.caPem, at, trust.fulcio)];
  }
  if (trust.rekorKeys.length > 0) {
    if (!sig.rekorBundle) throw new Error('the policy requires a Rekor proof, and the signature carries no Rekor bundle');
    // The logged key must be one of the policy's keys and the signature must verify with it.
    const logged = trust.keys.filter((k) => {
      try {
        verifyRekorBundle(sig.rekorBundle!, trust.rekorKeys, { signature, payload: sig.payload, signerPem: publicKeyPem(k) });
        return true;
      } catch {
        return false;
      }
    });
    if (logged.length === 0) {
      // Re-run against the first key for the reason (bad SET, other payload, other key...).
      verifyRekorBundle(sig.rekorBundle, trust.rekorKeys, { signature, payload: sig.payload, signerPem: publicKeyPem(trust.keys[0]!) });
    }
    return logged;
  }
  return trust.keys;
}

/** The name the image is used by, as the identity rules see it: a tag-less reference means `:latest`. */
function intendedReference(subject: PolicySubject): ImageReference | undefined {
  if (subject.transport !== 'docker' || !('reference' in subject)) return undefined;
  const r = subject.reference;
  return r.tag || r.digest ? r : { ...r, tag: 'latest' };
}

/**
 * signedBy with GPG keys, as containers/image's prSignedBy: at least one stored signature must be an
 * OpenPGP message signed by one of the policy's keys, over an atomic payload naming `digest`, whose
 * docker-reference satisfies signedIdentity. Other key types are not implemented there either.
 */
async function signedByRefusal(req: SignedByRequirement, image: PolicyImage, digest: Digest | undefined): Promise<string | undefined> {
  if (req.keyType !== 'GPGKeys') return `signedBy keyType "${req.keyType}" is not implemented (only GPGKeys, as in containers/image)`;
  if (!image.gpgSignatures || !digest) return `a signature was required, but ${image.subject.transport}: images carry no simple signatures`;
  // OpenPGP loads only when a policy asks for GPG signatures.
  const [{ verifyGpgSignature }, { readGpgPublicKeyFiles, readGpgPublicKeys }] = await Promise.all([import('../sign/gpg.js'), import('../sign/gpg-keys.js')]);
  let keys: PublicKey[];
  try {
    keys = req.keyData
      ? await readGpgPublicKeys(req.keyData, "the policy's keyData")
      : await readGpgPublicKeyFiles(req.keyPath ? [req.keyPath] : (req.keyPaths ?? []));
  } catch (err) {
    return `cannot load the policy's GPG keys: ${errorMessage(err)}`;
  }
  let sigs: Array<{ location: string; bytes: Buffer }>;
  try {
    sigs = await image.gpgSignatures(digest);
  } catch (err) {
    return `cannot read the image's signatures: ${errorMessage(err)}`;
  }
  if (sigs.length === 0) return `a signature was required, but no signature exists for ${digest}`;
  const intended = intendedReference(image.subject);
  const reasons: string[] = [];
  for (const sig of sigs) {
    try {
      const { payload, fingerprint } = await verifyGpgSignature(sig.bytes, keys);
      if (payload.manifestDigest !== digest) {
        reasons.push(`${sig.location}: signed by ${fingerprint} for digest ${payload.manifestDigest}, not ${digest}`);
        continue;
      }
      if (!identityMatches(req.signedIdentity, intended, payload.dockerReference)) {
        reasons.push(
          `${sig.location}: signature identity "${payload.dockerReference}" does not match ${intended ? formatReference(intended) : 'the image'} under signedIdentity ${req.signedIdentity.type}`,
        );
        continue;
      }
      return undefined;
    } catch (err) {
      reasons.push(`${sig.location}: ${errorMessage(err)}`);
    }
  }
  return `none of the ${sigs.length} signature(s) was accepted: ${reasons.join('; ')}`;
}

async function sigstoreRefusal(req: SigstoreSignedRequirement, image: PolicyImage, digest: Digest | undefined): Promise<string | undefined> {
  if (!image.signatures || !digest) return `a signature was required, but ${image.subject.transport}: images carry no sigstore signatures`;
  let trust: SigstoreTrust;
  try {
    trust = await loadTrust(req);
  } catch (err) {
    return `cannot load the policy's public key or CA: ${errorMessage(err)}`;
  }
  const sigs = await image.signatures(digest);
  if (sigs.length === 0) return `a signature was required, but no signature exists for ${digest}`;
  const reasons: string[] = [];
  const intended = image.subject.transport === 'docker' && 'reference' in image.subject ? image.subject.reference : undefined;
  for (const sig of sigs) {
    try {
      const payload = checkSimpleSignature(sig, signatureKeys(sig, trust), { digest });
      if (!intended || !identityMatches(req.signedIdentity, intended, payload.dockerReference)) {
        reasons.push(
          `signature identity "${payload.dockerReference}" does not match ${intended ? formatReference(intended) : 'the image'} under signedIdentity ${req.signedIdentity.type}`,
        );
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
    if (why !== undefined)
      return { allowed: false, reason: `${describe(image.subject)}${image.digest ? ` (${image.digest})` : ''}: ${why} [scope ${scope}]`, scope };
  }
  return { allowed: true, reason: `accepted by scope ${scope}`, scope };
}

/** Whether the requirements that apply need signatures at all (reject / accept-anything decide without reading). */
export function needsSignatures(policy: Policy, subject: PolicySubject): boolean {
  return requirementsFor(policy, subject).requirements.some((r) => r.type !== 'insecureAcceptAnything' && r.type !== 'reject');
}
