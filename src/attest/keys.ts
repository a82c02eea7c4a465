import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { InvalidInputError } from '../util/errors.js';

/**
 * Signing keys. The signing helpers of `src/sign/keys.ts` (cosign's encrypted `ENCRYPTED SIGSTORE
 * PRIVATE KEY` PEM, plain PKCS#8 and SPKI) are used when that module is present; without it, plain
 * PEM keys are read here, and an encrypted cosign key is refused with a reason.
 */
interface SignKeys {
  loadPrivateKey(pemOrPath: string, password?: string): Promise<KeyObject>;
  loadPublicKey(pemOrPath: string): Promise<KeyObject>;
}

let signKeys: Promise<SignKeys | undefined> | undefined;

function signModule(): Promise<SignKeys | undefined> {
  // A computed specifier: the module belongs to another component and may not exist in this tree.
  const specifier = ['..', 'sign', 'keys.js'].join('/');
  signKeys ??= import(specifier).then(
    (m: Partial<SignKeys>) => (typeof m.loadPrivateKey === 'function' && typeof m.loadPublicKey === 'function' ? (m as SignKeys) : undefined),
    () => undefined,
  );
  return signKeys;
}

async function pemOf(pemOrPath: string): Promise<string> {
  if (pemOrPath.includes('-----BEGIN')) return pemOrPath;
  try {
    return await readFile(pemOrPath, 'utf8');
  } catch (err) {
    throw new InvalidInputError(`cannot read key file ${pemOrPath}: ${(err as Error).message}`);
  }
}

/** Checks the key is one DSSE signing here supports: ECDSA P-256 (cosign's default) or P-384. */
export function checkEcKey(key: KeyObject, what: string): KeyObject {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ec' || (curve !== 'prime256v1' && curve !== 'secp384r1')) {
    throw new InvalidInputError(`${what} must be an ECDSA P-256 or P-384 key, got ${key.asymmetricKeyType ?? 'unknown'}${curve ? ` (${curve})` : ''}`);
  }
  return key;
}

/** A private key from a KeyObject, a PEM string or a PEM file; the password comes from the caller or `COSIGN_PASSWORD`. */
export async function loadSigningKey(key: KeyObject | string, password?: string): Promise<KeyObject> {
  if (typeof key !== 'string') return checkEcKey(key, 'signing key');
  const mod = await signModule();
  if (mod) return checkEcKey(await mod.loadPrivateKey(key, password ?? process.env.COSIGN_PASSWORD), 'signing key');
  const pem = await pemOf(key);
  if (pem.includes('ENCRYPTED SIGSTORE PRIVATE KEY')) {
    throw new InvalidInputError('this is a cosign-encrypted private key; the cosign key reader (src/sign/keys.ts) is not available in this build: use a PKCS#8 PEM key');
  }
  try {
    return checkEcKey(createPrivateKey({ key: pem, format: 'pem', passphrase: password ?? process.env.COSIGN_PASSWORD }), 'signing key');
  } catch (err) {
    if (err instanceof InvalidInputError) throw err;
    throw new InvalidInputError(`not a usable private key: ${(err as Error).message}`);
  }
}

/** A public key (SPKI PEM, or the public half of a private key) for verification. */
export async function loadVerifyKey(key: KeyObject | string): Promise<KeyObject> {
  if (typeof key !== 'string') return checkEcKey(key.type === 'private' ? createPublicKey(key) : key, 'verification key');
  const mod = await signModule();
  if (mod) return checkEcKey(await mod.loadPublicKey(key), 'verification key');
  try {
    return checkEcKey(createPublicKey(await pemOf(key)), 'verification key');
  } catch (err) {
    if (err instanceof InvalidInputError) throw err;
    throw new InvalidInputError(`not a usable public key: ${(err as Error).message}`);
  }
}
