import { createPrivateKey, createPublicKey, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { decryptKeyBytes, encryptKeyBytes } from './encrypted-key.js';
import { KeyError } from './errors.js';
import { readPassword } from './password.js';
import { encodePem, parsePemBlocks, type PemBlock } from './pem.js';

/** PEM types of cosign's password-protected private keys (COSIGN is the pre-2.0 name). */
export const SIGSTORE_PRIVATE_KEY_PEM = 'ENCRYPTED SIGSTORE PRIVATE KEY';
export const COSIGN_PRIVATE_KEY_PEM = 'ENCRYPTED COSIGN PRIVATE KEY';

const PLAIN_PRIVATE_TYPES = ['PRIVATE KEY', 'EC PRIVATE KEY', 'RSA PRIVATE KEY'];

/** A PEM text given inline, or the path of a file holding one. */
async function readPemSource(pemOrPath: string): Promise<{ text: string; what: string }> {
  if (pemOrPath.includes('-----BEGIN ')) return { text: pemOrPath, what: 'inline key' };
  try {
    return { text: await readFile(pemOrPath, 'utf8'), what: pemOrPath };
  } catch (err) {
    throw new KeyError(`cannot read key file ${pemOrPath}: ${(err as Error).message}`, { cause: err });
  }
}

function firstBlock(text: string, what: string): PemBlock {
  const block = parsePemBlocks(text)[0];
  if (!block) throw new KeyError(`${what}: no PEM block found (expected a cosign key or a PEM private/public key)`);
  return block;
}

function checkSigningKey(key: KeyObject, what: string): KeyObject {
  const t = key.asymmetricKeyType;
  if (t !== 'ec' && t !== 'rsa') throw new KeyError(`${what}: unsupported key type "${t}" (ECDSA and RSA keys are supported)`);
  return key;
}

/**
 * Loads a private key: cosign's `ENCRYPTED SIGSTORE PRIVATE KEY` (or the older `ENCRYPTED COSIGN
 * PRIVATE KEY`) with its password, or a plain PKCS#8 / SEC1 / PKCS#1 PEM, or a PKCS#8 `ENCRYPTED
 * PRIVATE KEY`. The password, when needed and not given, comes from COSIGN_PASSWORD or a prompt.
 */
export async function loadPrivateKey(pemOrPath: string, password?: string): Promise<KeyObject> {
  const { text, what } = await readPemSource(pemOrPath);
  const block = firstBlock(text, what);
  if (block.type === SIGSTORE_PRIVATE_KEY_PEM || block.type === COSIGN_PRIVATE_KEY_PEM) {
    const pass = password ?? (await readPassword(`Enter password for private key ${what}: `));
    const der = await decryptKeyBytes(block.bytes, pass, what);
    try {
      return checkSigningKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }), what);
    } catch (err) {
      if (err instanceof KeyError) throw err;
      throw new KeyError(`${what}: the decrypted key is not PKCS#8: ${(err as Error).message}`, { cause: err });
    }
  }
  if (block.type === 'ENCRYPTED PRIVATE KEY') {
    const pass = password ?? (await readPassword(`Enter password for private key ${what}: `));
    try {
      return checkSigningKey(createPrivateKey({ key: encodePem(block.type, block.bytes), format: 'pem', passphrase: pass }), what);
    } catch (err) {
      if (err instanceof KeyError) throw err;
      throw new KeyError(`${what}: cannot decrypt the PKCS#8 key (wrong password?): ${(err as Error).message}`, { cause: err });
    }
  }
  if (PLAIN_PRIVATE_TYPES.includes(block.type)) {
    try {
      return checkSigningKey(createPrivateKey(encodePem(block.type, block.bytes)), what);
    } catch (err) {
      if (err instanceof KeyError) throw err;
      throw new KeyError(`${what}: malformed ${block.type}: ${(err as Error).message}`, { cause: err });
    }
  }
  if (block.type === 'PUBLIC KEY') throw new KeyError(`${what} is a public key; signing needs the private key (cosign.key)`);
  throw new KeyError(`${what}: unsupported PEM type "${block.type}" for a private key`);
}

/**
 * Loads a public key: an SPKI `PUBLIC KEY` PEM (cosign.pub), a certificate's key, or the public
 * half of a plain private key.
 */
export async function loadPublicKey(pemOrPath: string): Promise<KeyObject> {
  const { text, what } = await readPemSource(pemOrPath);
  const block = firstBlock(text, what);
  try {
    if (block.type === 'PUBLIC KEY') return checkSigningKey(createPublicKey(encodePem(block.type, block.bytes)), what);
    if (block.type === 'CERTIFICATE') return checkSigningKey(new X509Certificate(encodePem(block.type, block.bytes)).publicKey, what);
    if (PLAIN_PRIVATE_TYPES.includes(block.type)) return checkSigningKey(createPublicKey(encodePem(block.type, block.bytes)), what);
  } catch (err) {
    if (err instanceof KeyError) throw err;
    throw new KeyError(`${what}: malformed ${block.type}: ${(err as Error).message}`, { cause: err });
  }
  if (block.type === SIGSTORE_PRIVATE_KEY_PEM || block.type === COSIGN_PRIVATE_KEY_PEM) {
    throw new KeyError(`${what} is an encrypted private key; verification needs the public key (cosign.pub)`);
  }
  throw new KeyError(`${what}: unsupported PEM type "${block.type}" for a public key`);
}

/** The SPKI PEM of a key (public, or the public half of a private one). */
export function publicKeyPem(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return pub.export({ type: 'spki', format: 'pem' }).toString();
}

/** Encrypts a private key into cosign's `ENCRYPTED SIGSTORE PRIVATE KEY` PEM. */
export function encryptPrivateKey(key: KeyObject, password: string): string {
  const der = key.export({ type: 'pkcs8', format: 'der' });
  return encodePem(SIGSTORE_PRIVATE_KEY_PEM, encryptKeyBytes(der, password));
}

/**
 * A new ECDSA P-256 key pair as `cosign generate-key-pair` writes it: the private key encrypted
 * (scrypt + secretbox) under `password`, the public key as SPKI PEM.
 */
export function generateKeyPair(password: string): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privatePem: encryptPrivateKey(privateKey, password), publicPem: publicKeyPem(publicKey) };
}
