import { createPublicKey, type KeyObject } from 'node:crypto';
import { loadPrivateKey, loadPublicKey } from '../sign/keys.js';
import { InvalidInputError } from '../util/errors.js';

/**
 * Keys for attestation signing, read by the signing component (src/sign/keys.ts): cosign's
 * encrypted `ENCRYPTED SIGSTORE PRIVATE KEY` PEM (password from the caller or `COSIGN_PASSWORD`),
 * plain PKCS#8 and SPKI PEM, given as a PEM string or a file path.
 */

/** Checks the key is one DSSE signing here supports: ECDSA P-256 (cosign's default) or P-384. */
export function checkEcKey(key: KeyObject, what: string): KeyObject {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ec' || (curve !== 'prime256v1' && curve !== 'secp384r1')) {
    throw new InvalidInputError(`${what} must be an ECDSA P-256 or P-384 key, got ${key.asymmetricKeyType ?? 'unknown'}${curve ? ` (${curve})` : ''}`);
  }
  return key;
}

export async function loadSigningKey(key: KeyObject | string, password?: string): Promise<KeyObject> {
  if (typeof key !== 'string') return checkEcKey(key, 'signing key');
  return checkEcKey(await loadPrivateKey(key, password), 'signing key');
}

/** A public key (SPKI PEM or file, a KeyObject, or the public half of a private KeyObject). */
export async function loadVerifyKey(key: KeyObject | string): Promise<KeyObject> {
  if (typeof key !== 'string') return checkEcKey(key.type === 'private' ? createPublicKey(key) : key, 'verification key');
  return checkEcKey(await loadPublicKey(key), 'verification key');
}
