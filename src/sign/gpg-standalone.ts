import type { PrivateKey, PublicKey } from 'openpgp';
import { digestBytes, type Digest } from '../oci/digest.js';
import { formatReference, parseReference } from '../oci/reference.js';
import { InvalidInputError, UnsupportedError } from '../util/errors.js';
import { SignatureError } from './errors.js';
import { createGpgSignature, verifyGpgSignature } from './gpg.js';

/**
 * The digest a signature of these manifest bytes names. Docker schema 1 manifests carry their own
 * JWS signatures, which containers/image strips before digesting; Stevedore does not handle them.
 */
export function signedManifestDigest(manifest: Uint8Array, source: string): Digest {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(manifest).toString('utf8'));
  } catch {
    throw new InvalidInputError(`${source}: the manifest is not JSON`);
  }
  if (typeof doc === 'object' && doc !== null && (doc as { schemaVersion?: unknown }).schemaVersion === 1) {
    throw new UnsupportedError(`${source}: Docker schema 1 manifests are not supported`);
  }
  return digestBytes(manifest);
}

function normalizedReference(ref: string, what: string): string {
  try {
    return formatReference(parseReference(ref));
  } catch (err) {
    throw new InvalidInputError(`${what} "${ref}" is not a valid docker reference: ${(err as Error).message}`);
  }
}

/** skopeo standalone-sign: a signature of `manifest` (its digest) for `dockerReference`, written as given. */
export async function standaloneSign(manifest: Uint8Array, dockerReference: string, key: PrivateKey, source = 'manifest'): Promise<Buffer> {
  normalizedReference(dockerReference, 'DOCKER-REFERENCE');
  return createGpgSignature(key, dockerReference, signedManifestDigest(manifest, source));
}

/**
 * skopeo standalone-verify: the signature must verify with `keys` by one of `fingerprints` (or any
 * of the keys with `'any'`), name this manifest's digest, and claim the same docker reference
 * (both compared in normalized form: `busybox` is `docker.io/library/busybox`).
 */
export async function standaloneVerify(
  manifest: Uint8Array,
  dockerReference: string,
  fingerprints: readonly string[] | 'any',
  signature: Uint8Array,
  keys: readonly PublicKey[],
  source = 'manifest',
): Promise<{ digest: Digest; fingerprint: string }> {
  const expected = normalizedReference(dockerReference, 'DOCKER-REFERENCE');
  const digest = signedManifestDigest(manifest, source);
  const v = await verifyGpgSignature(signature, keys, fingerprints === 'any' ? undefined : fingerprints);
  if (v.payload.manifestDigest !== digest)
    throw new SignatureError('SIGNATURE_MISMATCH', `the signature is for manifest digest ${v.payload.manifestDigest}, and the manifest's is ${digest}`);
  let signed: string;
  try {
    signed = formatReference(parseReference(v.payload.dockerReference));
  } catch {
    throw new SignatureError('SIGNATURE_INVALID', `the signature claims "${v.payload.dockerReference}", which is not a valid docker reference`);
  }
  if (signed !== expected)
    throw new SignatureError('SIGNATURE_MISMATCH', `the signature claims docker reference ${v.payload.dockerReference}, not ${dockerReference}`);
  return { digest, fingerprint: v.fingerprint };
}
