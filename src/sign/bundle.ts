import type { KeyObject } from 'node:crypto';
import type { Digest } from '../oci/digest.js';
import { digestHex, digestAlgorithm } from '../oci/digest.js';
import { encodeManifest, type ImageManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatype.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { RegistryClient } from '../registry/client.js';
import { pushReferrer } from '../registry/referrers.js';
import { keyHint, signData, verifyData } from './crypto.js';
import { SignatureError } from './errors.js';
import { pushSmallBlob } from './registry-io.js';
import { rfc3339Seconds } from '../util/time.js';
import { isObject } from '../util/is-object.js';

/** The sigstore bundle (v0.3) cosign's `--new-bundle-format` stores as an OCI 1.1 referrer. */
export const BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
export const INTOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const INTOTO_STATEMENT_V1 = 'https://in-toto.io/Statement/v1';
/** The predicate of a plain "this image is signed" statement, as cosign writes it. */
export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';

/** DSSE's pre-authentication encoding: what a DSSE signature actually signs. */
export function pae(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), Buffer.from(payload)]);
}

/** An in-toto statement naming the image by digest, with cosign's signing predicate type. */
export function signStatement(digest: Digest, predicateType = COSIGN_SIGN_PREDICATE, predicate?: unknown): Buffer {
  const doc: Record<string, unknown> = {
    _type: INTOTO_STATEMENT_V1,
    subject: [{ digest: { [digestAlgorithm(digest)]: digestHex(digest) } }],
    predicateType,
  };
  if (predicate !== undefined) doc.predicate = predicate;
  return Buffer.from(JSON.stringify(doc));
}

/**
 * A sigstore bundle holding a DSSE envelope signed with a key: the verification material is the
 * key's hint (base64 SHA-256 of its SPKI), as cosign writes it when no certificate is involved.
 */
export function makeKeyBundle(key: KeyObject, payload: Buffer, payloadType = INTOTO_PAYLOAD_TYPE): Buffer {
  const sig = signData(key, pae(payloadType, payload));
  return Buffer.from(
    JSON.stringify({
      mediaType: BUNDLE_MEDIA_TYPE,
      verificationMaterial: { publicKey: { hint: keyHint(key) } },
      dsseEnvelope: { payload: payload.toString('base64'), payloadType, signatures: [{ sig: sig.toString('base64') }] },
    }),
  );
}

export interface ParsedBundle {
  payloadType: string;
  payload: Buffer;
  signatures: Buffer[];
  keyHint?: string;
  /** DER of the signing certificate (keyless bundles). */
  certificate?: Buffer;
}

/** Parses the parts of a bundle we verify; a message-signature bundle or a malformed one is refused with the reason. */
export function parseBundle(bytes: Uint8Array): ParsedBundle {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new SignatureError('SIGNATURE_INVALID', 'sigstore bundle is not JSON');
  }
  if (!isObject(doc) || typeof doc.mediaType !== 'string' || !doc.mediaType.startsWith('application/vnd.dev.sigstore.bundle')) {
    throw new SignatureError('SIGNATURE_INVALID', 'not a sigstore bundle (mediaType missing)');
  }
  const env = doc.dsseEnvelope;
  if (!isObject(env))
    throw new SignatureError('SIGNATURE_INVALID', 'sigstore bundle has no DSSE envelope (message-signature bundles are not image signatures)');
  if (typeof env.payload !== 'string' || typeof env.payloadType !== 'string' || !Array.isArray(env.signatures)) {
    throw new SignatureError('SIGNATURE_INVALID', 'sigstore bundle: malformed DSSE envelope');
  }
  const out: ParsedBundle = {
    payloadType: env.payloadType,
    payload: Buffer.from(env.payload, 'base64'),
    signatures: env.signatures.filter((s): s is { sig: string } => isObject(s) && typeof s.sig === 'string').map((s) => Buffer.from(s.sig, 'base64')),
  };
  const vm = isObject(doc.verificationMaterial) ? doc.verificationMaterial : {};
  if (isObject(vm.publicKey) && typeof vm.publicKey.hint === 'string') out.keyHint = vm.publicKey.hint;
  if (isObject(vm.certificate) && typeof vm.certificate.rawBytes === 'string') out.certificate = Buffer.from(vm.certificate.rawBytes, 'base64');
  return out;
}

/** Whether any DSSE signature of the bundle verifies with `key`. */
export function bundleSignedBy(bundle: ParsedBundle, key: KeyObject): boolean {
  const message = pae(bundle.payloadType, bundle.payload);
  return bundle.signatures.some((s) => verifyData(key, message, s));
}

/** The subject digests and predicate type of an in-toto statement, refusing anything else. */
export function parseStatement(payloadType: string, payload: Buffer): { digests: Digest[]; predicateType: string; predicate?: unknown } {
  if (payloadType !== INTOTO_PAYLOAD_TYPE) throw new SignatureError('SIGNATURE_INVALID', `DSSE payload type is "${payloadType}", not ${INTOTO_PAYLOAD_TYPE}`);
  let doc: unknown;
  try {
    doc = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new SignatureError('SIGNATURE_INVALID', 'in-toto statement is not JSON');
  }
  if (!isObject(doc) || typeof doc._type !== 'string' || !doc._type.startsWith('https://in-toto.io/Statement/')) {
    throw new SignatureError('SIGNATURE_INVALID', 'DSSE payload is not an in-toto statement');
  }
  if (typeof doc.predicateType !== 'string') throw new SignatureError('SIGNATURE_INVALID', 'in-toto statement has no predicateType');
  const digests: Digest[] = [];
  for (const s of Array.isArray(doc.subject) ? doc.subject : []) {
    if (!isObject(s) || !isObject(s.digest)) continue;
    for (const [alg, hex] of Object.entries(s.digest)) if (typeof hex === 'string') digests.push(`${alg}:${hex}` as Digest);
  }
  return { digests, predicateType: doc.predicateType, predicate: doc.predicate };
}

/**
 * Stores a bundle as cosign does: an OCI manifest whose artifactType is the bundle media type, an
 * empty config, the bundle as its one layer and the image as its subject, found through the
 * referrers API or the `sha256-<hex>` fallback tag.
 */
export async function pushBundleReferrer(
  client: RegistryClient,
  repo: string,
  subject: Descriptor,
  bundle: Buffer,
  opts: { predicateType?: string; content?: string; signal?: AbortSignal } = {},
): Promise<Digest> {
  const config = await pushSmallBlob(client, repo, Buffer.from('{}'), MediaType.OciEmpty, opts.signal);
  const layer = await pushSmallBlob(client, repo, bundle, BUNDLE_MEDIA_TYPE, opts.signal);
  const annotations = {
    'dev.sigstore.bundle.content': opts.content ?? 'dsse-envelope',
    'dev.sigstore.bundle.predicateType': opts.predicateType ?? COSIGN_SIGN_PREDICATE,
    'org.opencontainers.image.created': rfc3339Seconds(),
  };
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: BUNDLE_MEDIA_TYPE,
    config,
    layers: [layer],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations,
  };
  const raw = encodeManifest(manifest);
  await pushReferrer(client, repo, raw, subject.digest, { artifactType: BUNDLE_MEDIA_TYPE, annotations }, opts.signal);
  return raw.digest;
}
