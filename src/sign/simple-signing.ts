import { isDigest, type Digest } from '../oci/digest.js';
import { findDuplicateKey } from '../policy/json-strict.js';
import { SignatureError } from './errors.js';
import { isObject } from '../util/is-object.js';

/** containers/image's cap on one signature's size; anything bigger is refused before parsing. */
export const MAX_SIGNATURE_BYTES = 4 * 1024 * 1024;

/** `critical.type` of the signatures containers/image (skopeo, podman) makes with GPG. */
export const ATOMIC_SIGNATURE_TYPE = 'atomic container signature';

/** What a GPG simple signature claims: an image (manifest digest) under a name (docker-reference). */
export interface AtomicSignaturePayload {
  dockerReference: string;
  manifestDigest: Digest;
  /** `optional.creator`, e.g. `atomic 5.23.1` (skopeo 1.9) or `stevedore 0.1.0`. */
  creator?: string;
  /** `optional.timestamp`, seconds since the epoch. */
  timestamp?: number;
}

/**
 * The payload bytes as containers/image writes them: Go's encoding/json of maps, so keys sorted at
 * every level, no spaces: `{"critical":{"identity":{…},"image":{…},"type":…},"optional":{…}}`.
 */
export function encodeAtomicPayload(p: AtomicSignaturePayload): Buffer {
  const optional: Record<string, unknown> = {};
  if (p.creator !== undefined) optional.creator = p.creator;
  if (p.timestamp !== undefined) optional.timestamp = p.timestamp;
  const doc = {
    critical: {
      identity: { 'docker-reference': p.dockerReference },
      image: { 'docker-manifest-digest': p.manifestDigest },
      type: ATOMIC_SIGNATURE_TYPE,
    },
    optional,
  };
  return Buffer.from(JSON.stringify(doc));
}

function invalid(message: string): SignatureError {
  return new SignatureError('SIGNATURE_INVALID', `signature payload: ${message}`);
}

/** Exactly these keys, no more and no fewer (containers/image's paranoid unmarshalling). */
function exactFields(o: unknown, at: string, keys: readonly string[]): Record<string, unknown> {
  if (!isObject(o)) throw invalid(`${at} is not a JSON object`);
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw invalid(`unexpected field ${at}.${k}`);
  for (const k of keys) if (!(k in o)) throw invalid(`field ${at}.${k} is missing`);
  return o;
}

/**
 * Parses a GPG signature's payload as strictly as containers/image: top level exactly `critical`
 * and `optional`; `critical` exactly `type`, `image`, `identity`, each of those exactly its one
 * field; the type must be "atomic container signature"; `optional` may hold anything, but
 * `creator` must be a string and `timestamp` a whole number when present.
 */
export function parseAtomicPayload(bytes: Uint8Array): AtomicSignaturePayload {
  const text = Buffer.from(bytes).toString('utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw invalid('not JSON');
  }
  const dup = findDuplicateKey(text);
  if (dup) throw invalid(`duplicated field "${dup.key}" in ${dup.path}`);
  const top = exactFields(doc, '(top level)', ['critical', 'optional']);
  const critical = exactFields(top.critical, 'critical', ['type', 'image', 'identity']);
  if (critical.type !== ATOMIC_SIGNATURE_TYPE) throw invalid(`unrecognized signature type ${JSON.stringify(critical.type)}`);
  const image = exactFields(critical.image, 'critical.image', ['docker-manifest-digest']);
  const identity = exactFields(critical.identity, 'critical.identity', ['docker-reference']);
  const digest = image['docker-manifest-digest'];
  if (typeof digest !== 'string' || !isDigest(digest)) throw invalid(`critical.image.docker-manifest-digest ${JSON.stringify(digest)} is not a digest`);
  const ref = identity['docker-reference'];
  if (typeof ref !== 'string') throw invalid('critical.identity.docker-reference is not a string');
  if (!isObject(top.optional)) throw invalid('optional is not a JSON object');
  const out: AtomicSignaturePayload = { dockerReference: ref, manifestDigest: digest };
  const { creator, timestamp } = top.optional;
  if (creator !== undefined) {
    if (typeof creator !== 'string') throw invalid('optional.creator is not a string');
    out.creator = creator;
  }
  if (timestamp !== undefined) {
    if (typeof timestamp !== 'number' || !Number.isSafeInteger(timestamp)) throw invalid('optional.timestamp is not a whole number');
    out.timestamp = timestamp;
  }
  return out;
}
