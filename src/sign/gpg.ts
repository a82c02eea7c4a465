import { createMessage, readMessage, sign, verify, type Message, type PrivateKey, type PublicKey } from 'openpgp';
import type { Digest } from '../oci/digest.js';
import { errorMessage } from '../util/errors.js';
import { VERSION } from '../util/version.js';
import { SignatureError } from './errors.js';
import { fingerprintOf } from './gpg-keys.js';
import { encodeAtomicPayload, MAX_SIGNATURE_BYTES, parseAtomicPayload, type AtomicSignaturePayload } from './simple-signing.js';

export { MAX_SIGNATURE_BYTES } from './simple-signing.js';

/** The creator written into `optional.creator` of signatures Stevedore makes. */
export const STEVEDORE_CREATOR = `stevedore ${VERSION}`;

/**
 * Signs a manifest digest for a docker-reference: the atomic payload as an OpenPGP signed message
 * (one-pass signature, literal data, signature; binary, not armored), the form `gpg --sign`,
 * skopeo and podman write to `signature-N` files.
 */
export async function createGpgSignature(key: PrivateKey, dockerReference: string, digest: Digest, opts: { timestamp?: number } = {}): Promise<Buffer> {
  const payload = encodeAtomicPayload({
    dockerReference,
    manifestDigest: digest,
    creator: STEVEDORE_CREATOR,
    timestamp: opts.timestamp ?? Math.floor(Date.now() / 1000),
  });
  const signed = await sign({ message: await createMessage({ binary: payload }), signingKeys: key, format: 'binary' });
  return Buffer.from(signed as Uint8Array);
}

export interface VerifiedGpgSignature {
  payload: AtomicSignaturePayload;
  /** Fingerprint of the primary key that signed (also when a subkey made the signature). */
  fingerprint: string;
}

/**
 * Verifies an OpenPGP signed message with `keys` and returns the signed payload and the signer.
 * Exactly one signature, made by one of `keys` (primary or subkey), must verify over the literal
 * data; the payload is then parsed strictly. `trustedFingerprints`, when given, further restricts
 * which of the keys may have signed (skopeo's standalone-verify list).
 */
export async function verifyGpgSignature(
  signature: Uint8Array,
  keys: readonly PublicKey[],
  trustedFingerprints?: readonly string[],
): Promise<VerifiedGpgSignature> {
  if (signature.length > MAX_SIGNATURE_BYTES)
    throw new SignatureError('SIGNATURE_INVALID', `signature is ${signature.length} bytes, more than the ${MAX_SIGNATURE_BYTES}-byte limit`);
  if (keys.length === 0) throw new SignatureError('SIGNATURE_INVALID', 'no public keys to verify the signature with');
  let message: Message<Uint8Array>;
  try {
    const text = Buffer.from(signature).toString('latin1');
    message = text.startsWith('-----BEGIN PGP MESSAGE-----')
      ? await readMessage({ armoredMessage: text })
      : await readMessage({ binaryMessage: Uint8Array.from(signature) });
  } catch (err) {
    throw new SignatureError('SIGNATURE_INVALID', `not an OpenPGP signed message: ${errorMessage(err)}`);
  }
  const ids = message.getSigningKeyIDs();
  if (ids.length !== 1) throw new SignatureError('SIGNATURE_INVALID', `expected exactly one signature in the message, found ${ids.length}`);
  const keyID = ids[0]!;
  const signer = keys.find((k) => k.getKeys(keyID).length > 0);
  if (!signer) throw new SignatureError('SIGNATURE_INVALID', `signed by key ID ${keyID.toHex().toUpperCase()}, which is not among the trusted keys`);
  let data: Uint8Array;
  try {
    const result = await verify({ message, verificationKeys: [signer], expectSigned: true, format: 'binary' });
    await Promise.all(result.signatures.map((s) => s.verified));
    data = result.data as Uint8Array;
  } catch (err) {
    throw new SignatureError(
      'SIGNATURE_INVALID',
      `the signature by ${fingerprintOf(signer)} does not verify (the payload was altered, or the key is expired or revoked): ${errorMessage(err)}`,
    );
  }
  const fingerprint = fingerprintOf(signer);
  if (trustedFingerprints) {
    // Full fingerprints, as containers/image compares them: the primary key's, or the signing subkey's.
    const subkey = signer.getKeys(keyID)[0]!.getFingerprint().toUpperCase();
    const wanted = trustedFingerprints.map((f) => f.replace(/^0x/i, '').replace(/\s/g, '').toUpperCase());
    if (!wanted.includes(fingerprint) && !wanted.includes(subkey)) {
      throw new SignatureError('SIGNATURE_INVALID', `signature by key ${fingerprint}, which is not one of the accepted fingerprints ${wanted.join(', ')}`);
    }
  }
  return { payload: parseAtomicPayload(data), fingerprint };
}
