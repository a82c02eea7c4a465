import { sign as nodeSign, verify as nodeVerify, createHash, createPublicKey, type KeyObject } from 'node:crypto';

/**
 * The hash cosign pairs with a key: SHA-256 for ECDSA P-256 and RSA, SHA-384 for P-384, SHA-512
 * for P-521. Signatures are ASN.1 DER (ECDSA) or PKCS#1 v1.5 (RSA), as Go's crypto produces.
 */
export function hashFor(key: KeyObject): 'sha256' | 'sha384' | 'sha512' {
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'secp384r1') return 'sha384';
    if (curve === 'secp521r1') return 'sha512';
  }
  return 'sha256';
}

export function signData(key: KeyObject, data: Uint8Array): Buffer {
  return nodeSign(hashFor(key), data, key);
}

/** False for a signature that does not verify, including one that is not even well-formed DER. */
export function verifyData(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    return nodeVerify(hashFor(key), data, key, signature);
  } catch {
    return false;
  }
}

/** base64(sha256(SPKI DER)): the key hint cosign puts in a sigstore bundle made with a key. */
export function keyHint(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return createHash('sha256')
    .update(pub.export({ type: 'spki', format: 'der' }))
    .digest('base64');
}
