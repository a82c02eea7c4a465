import type { KeyObject } from 'node:crypto';
import type { Digest } from '../oci/digest.js';
import { parseManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatype.js';
import { formatReference, referenceName, type ImageReference } from '../oci/reference.js';
import type { RegistryClient } from '../registry/client.js';
import { getManifest } from '../registry/manifests.js';
import { listReferrers } from '../registry/referrers.js';
import { registryClientFor } from '../transports/docker.js';
import type { TransportContext } from '../transports/types.js';
import { errorMessage } from '../util/errors.js';
import { BUNDLE_MEDIA_TYPE, bundleSignedBy, COSIGN_SIGN_PREDICATE, parseBundle, parseStatement } from './bundle.js';
import type { KeylessIdentity, KeylessTrust } from './keyless.js';
import { verifyData } from './crypto.js';
import { SignatureError } from './errors.js';
import { parseSimpleSigning, repositoryOfIdentity, type SimpleSigningPayload } from './payload.js';
import { readSmallBlob } from './registry-io.js';
import { readSignatures, SIGNATURE_ANNOTATION, type StoredSignature } from './signature-image.js';
import { attachmentTag } from '../registry/referrers.js';
import { resolveSubject, type SignatureFormat } from './sign.js';

export interface VerifyOptions {
  /** Which stored forms to check; default both. */
  formats?: SignatureFormat[];
  /**
   * The repository a simple-signing payload must name (`registry/repository`); default the
   * image's own. A mirror verifying signatures made for the upstream names the upstream here.
   */
  signedRepository?: string;
  /**
   * Keyless verification of bundles: a trusted root and the identity that must have signed.
   * Simple-signing signatures are not checked this way (they carry no certificate chain here).
   */
  keyless?: { trust: KeylessTrust; identity: KeylessIdentity };
  context?: TransportContext;
  signal?: AbortSignal;
}

export interface VerifiedSignature {
  format: SignatureFormat;
  location: string;
  /** The docker-reference a simple-signing payload claims. */
  identity?: string;
  /** Keyless: the certificate's subject alternative name and OIDC issuer. */
  signer?: { subjectAlternativeName?: string; issuer?: string };
  annotations?: Record<string, unknown> | null;
}

export interface VerifyReport {
  digest: Digest;
  verified: VerifiedSignature[];
  rejected: Array<{ format: SignatureFormat; location: string; reason: string }>;
}

/**
 * Checks one simple-signing signature: it must verify with one of the keys over the exact payload
 * bytes, and the payload must name `digest` (and, when given, `repository`). Returns the payload
 * or throws a SignatureError saying which check failed.
 */
export function checkSimpleSignature(sig: StoredSignature, keys: readonly KeyObject[], expect: { digest: Digest; repository?: string }): SimpleSigningPayload {
  if (!sig.signature) throw new SignatureError('SIGNATURE_INVALID', `layer ${sig.layer.digest} has no ${SIGNATURE_ANNOTATION} annotation`);
  const raw = Buffer.from(sig.signature, 'base64');
  if (raw.length === 0 || raw.toString('base64').replace(/=+$/, '') !== sig.signature.replace(/\s/g, '').replace(/=+$/, '')) {
    throw new SignatureError('SIGNATURE_INVALID', 'the signature annotation is not valid base64');
  }
  if (!keys.some((k) => verifyData(k, sig.payload, raw))) {
    throw new SignatureError(
      'SIGNATURE_INVALID',
      'the signature does not verify with the given public key (wrong key, or the payload or signature was altered)',
    );
  }
  const payload = parseSimpleSigning(sig.payload);
  if (payload.manifestDigest !== expect.digest) {
    throw new SignatureError('SIGNATURE_MISMATCH', `the signed payload is for digest ${payload.manifestDigest}, not ${expect.digest}`);
  }
  if (expect.repository !== undefined) {
    const repo = repositoryOfIdentity(payload.dockerReference);
    if (repo !== expect.repository) {
      throw new SignatureError('SIGNATURE_MISMATCH', `the signed payload names repository "${payload.dockerReference}", not ${expect.repository}`);
    }
  }
  return payload;
}

/** The bundles stored as referrers of `digest` (manifests whose artifactType is the bundle type). */
export async function readBundles(
  client: RegistryClient,
  repo: string,
  digest: Digest,
  signal?: AbortSignal,
): Promise<Array<{ manifest: Digest; bytes?: Buffer; error?: string }>> {
  // Not filtered by artifactType at the registry: go-containerregistry (so cosign) records a
  // referrer in the fallback index under its config's media type (the empty type), not the
  // manifest's artifactType. Other artifacts (SBOMs, attestations of other kinds) are skipped here.
  const { manifests } = await listReferrers(client, repo, digest, { signal });
  const out: Array<{ manifest: Digest; bytes?: Buffer; error?: string }> = [];
  for (const d of manifests) {
    if (d.artifactType && d.artifactType !== BUNDLE_MEDIA_TYPE && d.artifactType !== MediaType.OciEmpty) continue;
    try {
      const raw = await getManifest(client, repo, d.digest, { signal });
      const parsed = parseManifest(raw.bytes, raw.mediaType);
      if (parsed.kind !== 'image') throw new Error('referrer is an index, not a bundle manifest');
      if (parsed.manifest.subject?.digest !== digest) throw new Error(`referrer's subject is ${parsed.manifest.subject?.digest ?? 'missing'}, not ${digest}`);
      const layer = parsed.manifest.layers.find((l) => l.mediaType === BUNDLE_MEDIA_TYPE);
      if (!layer) continue; // an empty-config artifact of another kind
      out.push({ manifest: d.digest, bytes: await readSmallBlob(client, repo, layer, signal) });
    } catch (err) {
      out.push({ manifest: d.digest, error: errorMessage(err) });
    }
  }
  return out;
}

/** Checks one bundle: a DSSE signature by one of the keys over an in-toto statement whose subject is `digest`. */
export function checkBundle(bytes: Buffer, keys: readonly KeyObject[], digest: Digest): { predicateType: string } {
  const bundle = parseBundle(bytes);
  if (!keys.some((k) => bundleSignedBy(bundle, k))) {
    throw new SignatureError('SIGNATURE_INVALID', 'the bundle signature does not verify with the given public key (wrong key, or the statement was altered)');
  }
  const st = parseStatement(bundle.payloadType, bundle.payload);
  if (!st.digests.includes(digest)) {
    throw new SignatureError('SIGNATURE_MISMATCH', `the signed statement is about ${st.digests.join(', ') || 'no digest'}, not ${digest}`);
  }
  return { predicateType: st.predicateType };
}

/**
 * Verifies the signatures stored for an image against public keys, as `cosign verify --key` does
 * (at least one must hold), and also checks what cosign leaves to policy: the payload's digest and
 * repository. Throws SIGNATURE_MISSING when there are none, SIGNATURE_INVALID (listing every
 * reason) when none holds.
 */
export async function verifyImage(ref: ImageReference, keys: readonly KeyObject[], opts: VerifyOptions = {}): Promise<VerifyReport> {
  const client = registryClientFor(ref, opts.context);
  const formats = opts.formats ?? ['simple', 'bundle'];
  try {
    const subject = await resolveSubject(client, ref, opts.signal);
    const report: VerifyReport = { digest: subject.digest, verified: [], rejected: [] };
    const repository = opts.signedRepository ?? referenceName(ref);
    if (formats.includes('simple') && keys.length > 0) {
      for (const sig of await readSignatures(client, ref.repository, subject.digest, opts.signal)) {
        const location = `${ref.registry}/${ref.repository}:${attachmentTag(subject.digest, 'sig')} (payload ${sig.layer.digest})`;
        try {
          const payload = checkSimpleSignature(sig, keys, { digest: subject.digest, repository });
          report.verified.push({ format: 'simple', location, identity: payload.dockerReference, annotations: payload.optional });
        } catch (err) {
          report.rejected.push({ format: 'simple', location, reason: errorMessage(err) });
        }
      }
    }
    if (formats.includes('bundle')) {
      for (const b of await readBundles(client, ref.repository, subject.digest, opts.signal)) {
        const location = `${ref.registry}/${ref.repository}@${b.manifest}`;
        try {
          if (!b.bytes) throw new SignatureError('SIGNATURE_INVALID', b.error ?? 'unreadable bundle');
          const parsed = parseBundle(b.bytes);
          if (parseStatement(parsed.payloadType, parsed.payload).predicateType !== COSIGN_SIGN_PREDICATE) continue; // an attestation, not a signature
          if (parsed.certificate && opts.keyless) {
            const { verifyKeylessBundle } = await import('./keyless.js');
            const signer = verifyKeylessBundle(b.bytes, subject.digest, opts.keyless.trust, opts.keyless.identity);
            report.verified.push({ format: 'bundle', location, signer });
            continue;
          }
          if (parsed.certificate)
            throw new SignatureError(
              'SIGNATURE_INVALID',
              'keyless bundle, but no trusted root and identity were given (--trusted-root, --certificate-identity, --certificate-oidc-issuer)',
            );
          if (keys.length === 0) throw new SignatureError('SIGNATURE_INVALID', 'bundle signed with a key, but no public key was given');
          checkBundle(b.bytes, keys, subject.digest);
          report.verified.push({ format: 'bundle', location });
        } catch (err) {
          report.rejected.push({ format: 'bundle', location, reason: errorMessage(err) });
        }
      }
    }
    const name = `${formatReference(ref)} (${subject.digest})`;
    if (report.verified.length === 0 && report.rejected.length === 0) {
      throw new SignatureError('SIGNATURE_MISSING', `${name} has no signatures`);
    }
    if (report.verified.length === 0) {
      const reasons = report.rejected.map((r) => `${r.format} ${r.location}: ${r.reason}`).join('; ');
      throw new SignatureError('SIGNATURE_INVALID', `no valid signature for ${name}: ${reasons}`);
    }
    return report;
  } finally {
    await client.close();
  }
}
