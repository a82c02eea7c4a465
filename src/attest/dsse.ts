import { sign, verify, type KeyObject } from 'node:crypto';
import { StevedoreError } from '../util/errors.js';

/** DSSE (github.com/secure-systems-lab/dsse) as cosign stores attestations. */
export const DSSE_MEDIA_TYPE = 'application/vnd.dsse.envelope.v1+json';
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

export interface DsseEnvelope {
  payloadType: string;
  /** Standard base64 of the payload bytes. */
  payload: string;
  signatures: { keyid: string; sig: string }[];
}

/** A signature or envelope that does not check out; `reason` is what a user can act on. */
export class AttestationError extends StevedoreError {
  constructor(message: string) {
    super('ATTESTATION_INVALID', message);
  }
}

/** The pre-authentication encoding every DSSE signature covers: `DSSEv1 <len> <type> <len> <body>`. */
export function pae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

/** Whether bytes are a DER `ECDSA-Sig-Value` (SEQUENCE of two INTEGERs), as ECDSA signatures travel. */
function isDerEcdsaSignature(sig: Buffer): boolean {
  if (sig.length < 8 || sig[0] !== 0x30) return false;
  let at = 2;
  let len = sig[1]!;
  if (len === 0x81) {
    len = sig[2]!;
    at = 3;
  } else if (len > 0x80) return false;
  if (at + len !== sig.length) return false;
  for (let i = 0; i < 2; i++) {
    if (sig[at] !== 0x02) return false;
    const n = sig[at + 1]!;
    if (n === 0 || n > 0x7f) return false;
    at += 2 + n;
  }
  return at === sig.length;
}

function hashFor(key: KeyObject): string {
  return key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'sha384' : 'sha256';
}

/** Signs a payload: ECDSA over the PAE, ASN.1 DER signature, as cosign and sigstore-go expect. */
export function signEnvelope(payload: Buffer, payloadType: string, key: KeyObject, keyid = ''): DsseEnvelope {
  const sig = sign(hashFor(key), pae(payloadType, payload), key);
  return { payloadType, payload: payload.toString('base64'), signatures: [{ keyid, sig: sig.toString('base64') }] };
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeBase64(value: string, what: string): Buffer {
  // Both alphabets occur in the wild (the DSSE spec allows URL-safe); anything else is garbage.
  const std = value.replace(/-/g, '+').replace(/_/g, '/');
  if (!BASE64.test(std)) throw new AttestationError(`${what} is not base64`);
  return Buffer.from(std, 'base64');
}

export function parseEnvelope(bytes: Buffer | string): DsseEnvelope {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.isBuffer(bytes) ? bytes.toString('utf8') : bytes);
  } catch {
    throw new AttestationError('DSSE envelope is not JSON');
  }
  const e = doc as Partial<DsseEnvelope>;
  if (typeof e !== 'object' || e === null || typeof e.payloadType !== 'string' || typeof e.payload !== 'string' || !Array.isArray(e.signatures)) {
    throw new AttestationError('DSSE envelope lacks payloadType, payload or signatures');
  }
  if (e.signatures.length === 0) throw new AttestationError('DSSE envelope has no signatures');
  for (const s of e.signatures) {
    if (typeof s !== 'object' || s === null || typeof s.sig !== 'string') throw new AttestationError('DSSE envelope has a signature without "sig"');
  }
  return e as DsseEnvelope;
}

/**
 * Verifies that at least one signature of the envelope is by `key`, and returns the payload bytes.
 * Fails with the reason otherwise (no valid signature, undecodable signature, wrong payload type).
 */
export function verifyEnvelope(env: DsseEnvelope, key: KeyObject, opts: { payloadType?: string } = {}): Buffer {
  if (opts.payloadType && env.payloadType !== opts.payloadType) {
    throw new AttestationError(`DSSE payload type is "${env.payloadType}", expected "${opts.payloadType}"`);
  }
  const payload = decodeBase64(env.payload, 'DSSE payload');
  const message = pae(env.payloadType, payload);
  let malformed = 0;
  for (const s of env.signatures) {
    let sig: Buffer;
    try {
      sig = decodeBase64(s.sig, 'DSSE signature');
    } catch {
      malformed++;
      continue;
    }
    if (!isDerEcdsaSignature(sig)) {
      malformed++;
      continue;
    }
    try {
      if (verify(hashFor(key), message, key, sig)) return payload;
    } catch {
      malformed++;
    }
  }
  if (malformed === env.signatures.length) throw new AttestationError('DSSE signature is malformed (not a DER-encoded ECDSA signature)');
  throw new AttestationError('DSSE signature does not verify with the given public key (signed by another key, or the payload was changed)');
}
