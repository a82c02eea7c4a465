import { createHash, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { json } from '@sigstore/core';
import { verifyData } from './crypto.js';
import { SignatureError } from './errors.js';
import { parsePemBlocks } from './pem.js';
import { isObject } from '../util/is-object.js';

/**
 * cosign's `dev.sigstore.cosign/bundle` annotation: a Rekor entry as the log returned it, with its
 * signed entry timestamp (SET), the log's signature over the canonical JSON of the payload.
 */
interface RekorBundle {
  SignedEntryTimestamp: string;
  Payload: { body: string; integratedTime: number; logIndex: number; logID: string };
}

const invalid = (msg: string) => new SignatureError('SIGNATURE_INVALID', `Rekor bundle: ${msg}`);

/** The SPKI DER of a PEM public key or certificate, for comparing "the same key". */
function spkiOf(pem: string): Buffer | undefined {
  const block = parsePemBlocks(pem)[0];
  if (!block) return undefined;
  try {
    const key = block.type === 'CERTIFICATE' ? new X509Certificate(pem).publicKey : createPublicKey(pem);
    return key.export({ type: 'spki', format: 'der' });
  } catch {
    return undefined;
  }
}

/**
 * Checks a legacy cosign signature's Rekor bundle, as containers/image does for sigstoreSigned with
 * a Rekor key: the SET verifies with one of the log keys; the logged entry is a hashedrekord v0.0.1
 * of exactly this signature, over the SHA-256 of exactly this payload, by exactly this key or
 * certificate. Returns the time the log integrated the entry (the time a Fulcio certificate must
 * have been valid at).
 */
export function verifyRekorBundle(
  annotation: string,
  rekorKeys: readonly KeyObject[],
  expect: { signature: Buffer; payload: Buffer; signerPem: string },
  now = new Date(),
): Date {
  let doc: unknown;
  try {
    doc = JSON.parse(annotation);
  } catch {
    throw invalid('not JSON');
  }
  if (!isObject(doc) || typeof doc.SignedEntryTimestamp !== 'string' || !isObject(doc.Payload)) throw invalid('SignedEntryTimestamp or Payload missing');
  const p = doc.Payload;
  if (typeof p.body !== 'string' || typeof p.integratedTime !== 'number' || typeof p.logIndex !== 'number' || typeof p.logID !== 'string') {
    throw invalid('Payload must have body, integratedTime, logIndex and logID');
  }
  const bundle = doc as unknown as RekorBundle;
  const signed = Buffer.from(json.canonicalize({ body: p.body, integratedTime: p.integratedTime, logIndex: p.logIndex, logID: p.logID }));
  const set = Buffer.from(bundle.SignedEntryTimestamp, 'base64');
  if (!rekorKeys.some((k) => verifyData(k, signed, set))) throw invalid('the signed entry timestamp does not verify with the Rekor public key');
  const integrated = new Date(p.integratedTime * 1000);
  if (integrated.getTime() > now.getTime() + 5 * 60_000) throw invalid(`integratedTime ${integrated.toISOString()} is in the future`);
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(p.body, 'base64').toString('utf8'));
  } catch {
    throw invalid('the logged body is not JSON');
  }
  if (!isObject(body) || body.kind !== 'hashedrekord' || body.apiVersion !== '0.0.1' || !isObject(body.spec)) {
    throw invalid(`the logged entry is ${isObject(body) ? `${String(body.kind)} ${String(body.apiVersion)}` : 'malformed'}, not hashedrekord 0.0.1`);
  }
  const spec = body.spec;
  const sig = isObject(spec.signature) ? spec.signature : {};
  const hash = isObject(spec.data) && isObject(spec.data.hash) ? spec.data.hash : {};
  if (typeof sig.content !== 'string' || !Buffer.from(sig.content, 'base64').equals(expect.signature))
    throw invalid('the logged signature is not this signature');
  if (hash.algorithm !== 'sha256' || hash.value !== createHash('sha256').update(expect.payload).digest('hex'))
    throw invalid('the logged hash is not the hash of this payload');
  const loggedKey = isObject(sig.publicKey) && typeof sig.publicKey.content === 'string' ? Buffer.from(sig.publicKey.content, 'base64').toString('utf8') : '';
  const a = spkiOf(loggedKey);
  const b = spkiOf(expect.signerPem);
  if (!a || !b || !a.equals(b)) throw invalid('the logged public key is not the key that made this signature');
  return integrated;
}
