import type { KeyObject } from 'node:crypto';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import { formatReference, referenceTarget, type ImageReference } from '../oci/reference.js';
import type { RegistryClient } from '../registry/client.js';
import { headManifest } from '../registry/manifests.js';
import { registryClientFor } from '../transports/docker.js';
import type { TransportContext } from '../transports/types.js';
import { NotFoundError } from '../util/errors.js';
import { rootLogger } from '../util/log.js';
import { makeKeyBundle, pushBundleReferrer, signStatement } from './bundle.js';
import { signData } from './crypto.js';
import { encodeSimpleSigning, signedIdentityOf } from './payload.js';
import { appendSignature, SIGNATURE_ANNOTATION } from './signature-image.js';
import { attachmentTag } from '../registry/referrers.js';

/** `simple`: cosign's classic `.sig` tag; `bundle`: a sigstore bundle referrer (`--new-bundle-format`). */
export type SignatureFormat = 'simple' | 'bundle';

export interface SignOptions {
  formats?: SignatureFormat[];
  /** Extra claims for the simple-signing payload's `optional` object (cosign's `-a KEY=VALUE`). */
  annotations?: Record<string, string>;
  context?: TransportContext;
  signal?: AbortSignal;
}

export interface SignResult {
  /** The signed manifest's digest. */
  digest: Digest;
  /** The docker-reference written into simple-signing payloads. */
  identity: string;
  /** Where each signature went: the `.sig` tag, or the referrer manifest's digest. */
  stored: Array<{ format: SignatureFormat; location: string }>;
}

/** The descriptor of what a reference names now (digest, media type, size) by HEAD. */
export async function resolveSubject(client: RegistryClient, ref: ImageReference, signal?: AbortSignal): Promise<Descriptor> {
  const head = await headManifest(client, ref.repository, referenceTarget(ref), { signal });
  if (!head) throw new NotFoundError(`${formatReference(ref)}: no such image`);
  return { mediaType: head.mediaType, digest: head.digest, size: head.size };
}

/**
 * Signs the manifest a registry reference names, by digest: the simple-signing payload (ECDSA over
 * SHA-256 of its bytes) appended to the `sha256-<hex>.sig` signature image, and/or a sigstore
 * bundle (DSSE over an in-toto statement) stored as a referrer. An index is signed as itself; its
 * digest covers every platform manifest it lists.
 */
export async function signImage(ref: ImageReference, key: KeyObject, opts: SignOptions = {}): Promise<SignResult> {
  const client = registryClientFor(ref, opts.context);
  try {
    const subject = await resolveSubject(client, ref, opts.signal);
    const identity = signedIdentityOf(ref);
    const result: SignResult = { digest: subject.digest, identity, stored: [] };
    for (const format of opts.formats ?? ['simple']) {
      if (format === 'simple') {
        const payload = encodeSimpleSigning(identity, subject.digest, opts.annotations);
        const signature = signData(key, payload).toString('base64');
        await appendSignature(client, ref.repository, subject.digest, payload, { [SIGNATURE_ANNOTATION]: signature }, opts.signal);
        result.stored.push({ format, location: `${ref.registry}/${ref.repository}:${attachmentTag(subject.digest, 'sig')}` });
      } else {
        const bundle = makeKeyBundle(key, signStatement(subject.digest));
        const digest = await pushBundleReferrer(client, ref.repository, subject, bundle, { signal: opts.signal });
        result.stored.push({ format, location: `${ref.registry}/${ref.repository}@${digest}` });
      }
    }
    rootLogger.info({ ref: formatReference(ref), digest: subject.digest, formats: opts.formats ?? ['simple'] }, 'image signed');
    return result;
  } finally {
    await client.close();
  }
}
