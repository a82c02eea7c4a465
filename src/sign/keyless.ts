import { readFile } from 'node:fs/promises';
import { bundleFromJSON, bundleToJSON } from '@sigstore/bundle';
import { DSSEBundleBuilder, FulcioSigner, RekorWitness } from '@sigstore/sign';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toSignedEntity, toTrustMaterial, Verifier, type TrustMaterial } from '@sigstore/verify';
import { formatReference, type ImageReference } from '../oci/reference.js';
import { registryClientFor } from '../transports/docker.js';
import type { TransportContext } from '../transports/types.js';
import { errorMessage, InvalidInputError } from '../util/errors.js';
import { rootLogger } from '../util/log.js';
import { INTOTO_PAYLOAD_TYPE, parseBundle, parseStatement, pushBundleReferrer, signStatement } from './bundle.js';
import { SignatureError } from './errors.js';
import { resolveSubject, type SignResult } from './sign.js';
import type { Digest } from '../oci/digest.js';

export interface KeylessSignOptions {
  /** The OIDC identity token Fulcio exchanges for a short-lived certificate (a workload's or a person's). */
  identityToken: string;
  fulcioURL?: string;
  rekorURL?: string;
  /** Record the signature in Rekor (default true); without it the bundle has no transparency-log proof. */
  tlogUpload?: boolean;
  /**
   * Rekor entry kind: `dsse` (default, as cosign) or `intoto` (older; what a log that stores the
   * proposed entry verbatim, such as @sigstore/mock's, can prove).
   */
  tlogEntryType?: 'dsse' | 'intoto';
  context?: TransportContext;
  signal?: AbortSignal;
}

/**
 * Keyless signing, as `cosign sign --new-bundle-format` without a key: an ephemeral key, a Fulcio
 * certificate binding it to the OIDC identity, a DSSE envelope over the in-toto statement naming
 * the image's digest, a Rekor entry; stored as a bundle referrer of the image.
 */
export async function signImageKeyless(ref: ImageReference, opts: KeylessSignOptions): Promise<SignResult> {
  const client = registryClientFor(ref, opts.context);
  try {
    const subject = await resolveSubject(client, ref, opts.signal);
    const token = opts.identityToken;
    const builder = new DSSEBundleBuilder({
      signer: new FulcioSigner({
        fulcioBaseURL: opts.fulcioURL ?? 'https://fulcio.sigstore.dev',
        identityProvider: { getToken: () => Promise.resolve(token) },
        retry: { retries: 2 },
        timeout: 10_000,
      }),
      witnesses:
        opts.tlogUpload === false
          ? []
          : [
              new RekorWitness({
                rekorBaseURL: opts.rekorURL ?? 'https://rekor.sigstore.dev',
                entryType: opts.tlogEntryType ?? 'dsse',
                fetchOnConflict: false,
                retry: { retries: 2 },
                timeout: 10_000,
              }),
            ],
    });
    const bundle = await builder.create({ data: signStatement(subject.digest), type: INTOTO_PAYLOAD_TYPE });
    const bytes = Buffer.from(JSON.stringify(bundleToJSON(bundle)));
    const digest = await pushBundleReferrer(client, ref.repository, subject, bytes, { signal: opts.signal });
    rootLogger.info({ ref: formatReference(ref), digest: subject.digest }, 'image signed keyless');
    return { digest: subject.digest, identity: formatReference(ref), stored: [{ format: 'bundle', location: `${ref.registry}/${ref.repository}@${digest}` }] };
  } finally {
    await client.close();
  }
}

/** Who must have signed, for keyless verification: the certificate's SAN and its OIDC issuer. */
export interface KeylessIdentity {
  /** Exact SAN (an e-mail or a URI), or a RegExp. */
  subjectAlternativeName: string | RegExp;
  issuer: string;
}

export interface KeylessTrust {
  /** The trusted root (CAs, CT logs, Rekor logs, TSAs): sigstore's `trusted_root.json`. */
  trustMaterial: TrustMaterial;
  /** Rekor entries required (default 1); CT log SCTs required (default 1). */
  tlogThreshold?: number;
  ctlogThreshold?: number;
}

/** Reads a `trusted_root.json` (sigstore's TrustedRoot) from a file, offline. */
export async function loadTrustedRoot(path: string): Promise<TrustMaterial> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new InvalidInputError(`cannot read trusted root ${path}: ${errorMessage(err)}`);
  }
  try {
    return toTrustMaterial(TrustedRoot.fromJSON(doc));
  } catch (err) {
    throw new InvalidInputError(`${path} is not a sigstore trusted root: ${errorMessage(err)}`);
  }
}

/**
 * Verifies a keyless bundle offline against a trusted root: the certificate chains to a trusted
 * Fulcio CA and carries enough SCTs, the Rekor entry is proven by a trusted log, the DSSE signature
 * verifies with the certificate's key, the certificate names the expected identity and issuer, and
 * the signed statement is about `digest`.
 */
export function verifyKeylessBundle(
  bytes: Buffer,
  digest: Digest,
  trust: KeylessTrust,
  identity: KeylessIdentity,
): { subjectAlternativeName?: string; issuer?: string } {
  let entity;
  try {
    entity = toSignedEntity(bundleFromJSON(JSON.parse(bytes.toString('utf8'))));
  } catch (err) {
    throw new SignatureError('SIGNATURE_INVALID', `malformed sigstore bundle: ${errorMessage(err)}`);
  }
  const verifier = new Verifier(trust.trustMaterial, { tlogThreshold: trust.tlogThreshold ?? 1, ctlogThreshold: trust.ctlogThreshold ?? 1 });
  let signer;
  try {
    signer = verifier.verify(entity, { subjectAlternativeName: identity.subjectAlternativeName, extensions: { issuer: identity.issuer } });
  } catch (err) {
    throw new SignatureError('SIGNATURE_INVALID', `keyless bundle refused: ${errorMessage(err)}`);
  }
  const parsed = parseBundle(bytes);
  const st = parseStatement(parsed.payloadType, parsed.payload);
  if (!st.digests.includes(digest))
    throw new SignatureError('SIGNATURE_MISMATCH', `the signed statement is about ${st.digests.join(', ') || 'no digest'}, not ${digest}`);
  return { subjectAlternativeName: signer.identity?.subjectAlternativeName, issuer: signer.identity?.extensions?.issuer };
}
