import { isDigest, type Digest } from '../oci/digest.js';
import { formatReference, parseReference, referenceName, type ImageReference } from '../oci/reference.js';
import { SignatureError } from './errors.js';
import { isObject } from '../util/is-object.js';

/** The `critical.type` cosign writes, and the one containers/image's own signatures use. */
export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';
const ATOMIC_SIGNATURE_TYPE = 'atomic container signature';

/**
 * The "simple signing" payload a signature signs (the `critical` part is what matters):
 * `{"critical":{"identity":{"docker-reference":…},"image":{"docker-manifest-digest":…},"type":…},"optional":…}`.
 */
export interface SimpleSigningPayload {
  dockerReference: string;
  manifestDigest: Digest;
  type: string;
  optional: Record<string, unknown> | null;
}

/**
 * The docker-reference a signature claims. cosign writes the repository alone; a reference signed
 * by tag keeps the tag as podman's sigstore signing does, so that containers-policy.json's default
 * `matchRepoDigestOrExact` accepts the signature when the image is pulled by that tag.
 */
export function signedIdentityOf(ref: ImageReference): string {
  if (ref.tag && !ref.digest) return formatReference({ registry: ref.registry, repository: ref.repository, tag: ref.tag });
  return referenceName(ref);
}

/** The payload bytes, with keys in the order cosign (Go's encoding/json of its structs) writes them. */
export function encodeSimpleSigning(dockerReference: string, digest: Digest, annotations?: Record<string, string>): Buffer {
  const doc = {
    critical: {
      identity: { 'docker-reference': dockerReference },
      image: { 'docker-manifest-digest': digest },
      type: COSIGN_SIGNATURE_TYPE,
    },
    optional: annotations && Object.keys(annotations).length > 0 ? annotations : null,
  };
  return Buffer.from(JSON.stringify(doc));
}

/**
 * Parses a payload strictly enough that a signature over something else (an attestation, a
 * payload with a missing digest) is never read as vouching for an image.
 */
export function parseSimpleSigning(bytes: Uint8Array): SimpleSigningPayload {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new SignatureError('SIGNATURE_INVALID', 'signature payload is not JSON');
  }
  if (!isObject(doc) || !isObject(doc.critical)) throw new SignatureError('SIGNATURE_INVALID', 'signature payload has no "critical" object');
  const c = doc.critical;
  for (const k of Object.keys(c)) {
    if (!['identity', 'image', 'type'].includes(k)) throw new SignatureError('SIGNATURE_INVALID', `signature payload: unknown field critical.${k}`);
  }
  const type = c.type;
  if (type !== COSIGN_SIGNATURE_TYPE && type !== ATOMIC_SIGNATURE_TYPE) {
    throw new SignatureError('SIGNATURE_INVALID', `signature payload: critical.type is "${String(type)}", not "${COSIGN_SIGNATURE_TYPE}"`);
  }
  const ref = isObject(c.identity) ? c.identity['docker-reference'] : undefined;
  const digest = isObject(c.image) ? c.image['docker-manifest-digest'] : undefined;
  if (typeof ref !== 'string' || ref === '') throw new SignatureError('SIGNATURE_INVALID', 'signature payload: critical.identity.docker-reference missing');
  if (typeof digest !== 'string' || !isDigest(digest)) {
    throw new SignatureError('SIGNATURE_INVALID', `signature payload: critical.image.docker-manifest-digest "${String(digest)}" is not a digest`);
  }
  const optional = isObject(doc.optional) ? doc.optional : null;
  return { dockerReference: ref, manifestDigest: digest, type: type as string, optional };
}

/** Registry and repository of a docker-reference (cosign's `index.docker.io/...` normalised to `docker.io`). */
export function repositoryOfIdentity(dockerReference: string): string | undefined {
  try {
    return referenceName(parseReference(dockerReference));
  } catch {
    return undefined;
  }
}
