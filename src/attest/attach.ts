import type { KeyObject } from 'node:crypto';
import type { Descriptor } from '../oci/descriptor.js';
import { isDigest, type Digest } from '../oci/digest.js';
import { encodeManifest, type ImageManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatype.js';
import { referenceName, referenceTarget, type ImageReference } from '../oci/reference.js';
import type { RegistryClient } from '../registry/client.js';
import { headManifest } from '../registry/manifests.js';
import { pushReferrer } from '../registry/referrers.js';
import { DockerReference, registryClientFor } from '../transports/docker.js';
import { parseImageName } from '../transports/index.js';
import type { TransportContext } from '../transports/types.js';
import { generateSbom, type SbomFormat, type SbomResult } from '../sbom/index.js';
import { InvalidInputError, NotFoundError } from '../util/errors.js';
import { rootLogger } from '../util/log.js';
import { DSSE_MEDIA_TYPE, IN_TOTO_PAYLOAD_TYPE, signEnvelope } from './dsse.js';
import { loadSigningKey } from './keys.js';
import { SIGNATURE_ANNOTATION, updateAttachment } from '../sign/signature-image.js';
import { ATTESTATION_ARTIFACT_TYPE, EMPTY_CONFIG, PREDICATE_TYPE_ANNOTATION } from './referrer.js';
import { pushSmallBlob } from '../sign/registry-io.js';
import { makeStatement, statementCovers, type Statement } from './statement.js';
import { rfc3339Seconds } from '../util/time.js';

export { ATTESTATION_ARTIFACT_TYPE, PREDICATE_TYPE_ANNOTATION };

export interface AttachOptions {
  /** ECDSA P-256 private key: a KeyObject, a PEM string or a PEM file (cosign's encrypted format through src/sign). */
  key: KeyObject | string;
  password?: string;
  ctx?: TransportContext;
  /** Write the OCI 1.1 referrer (default true). */
  referrer?: boolean;
  /** Also write cosign's `sha256-<hex>.att` tag, which `cosign verify-attestation` reads (default true). */
  cosignTag?: boolean;
  signal?: AbortSignal;
}

export interface AttachedSubject {
  /** `registry/repository`, the statement's subject name. */
  name: string;
  digest: Digest;
  mediaType: string;
  size: number;
}

export interface AttachResult {
  subject: AttachedSubject;
  predicateType: string;
  /** Digest of the DSSE envelope blob. */
  envelope: Digest;
  /** The OCI 1.1 referrer manifest, and how it was indexed (registry API or fallback tag). */
  referrer?: { digest: Digest; via: 'api' | 'tag'; tag?: string };
  /** cosign's attestation manifest and its tag. */
  cosign?: { tag: string; digest: Digest };
}

function registryRef(image: string): ImageReference {
  const ref = parseImageName(image);
  if (!(ref instanceof DockerReference)) throw new InvalidInputError(`attestations are stored in a registry: ${image} is not a docker:// image`);
  return ref.ref;
}

/**
 * The image a subject digest or reference names, as stored: refused with a reason (and nothing
 * written) when the repository does not have it, so no attestation ever points at a missing subject.
 */
async function resolveSubject(client: RegistryClient, ref: ImageReference, digest: Digest | undefined, signal?: AbortSignal): Promise<AttachedSubject> {
  const target = digest ?? referenceTarget(ref);
  const head = await headManifest(client, ref.repository, target, { signal });
  const name = referenceName(ref);
  if (!head) {
    throw new NotFoundError(`cannot attach to ${name}@${target}: the subject image is not in the repository (push the image first); nothing was attached`);
  }
  if (ref.digest && !digest && head.digest !== ref.digest) throw new InvalidInputError(`${name}: registry returned ${head.digest} for ${ref.digest}`);
  return { name, digest: head.digest, mediaType: head.mediaType || MediaType.OciManifest, size: head.size };
}

/**
 * Signs an in-toto statement into a DSSE envelope and attaches it to the image in the registry:
 * as an OCI 1.1 referrer artifact (artifactType `application/vnd.in-toto+json`, the envelope as
 * its one layer, `subject` = the image) and as cosign's `sha256-<hex>.att` tag. `statement` may be a
 * function of the resolved subject, so callers can name the digest they did not know yet.
 * `subjectDigest` attaches to that manifest of the repository (a platform image of an index)
 * instead of the one the reference names.
 */
export async function attachStatement(
  image: string,
  statement: Statement | ((subject: AttachedSubject) => Statement),
  opts: AttachOptions & { subjectDigest?: Digest },
): Promise<AttachResult> {
  const ref = registryRef(image);
  if (opts.subjectDigest !== undefined && !isDigest(opts.subjectDigest)) throw new InvalidInputError(`invalid subject digest "${opts.subjectDigest}"`);
  const key = await loadSigningKey(opts.key, opts.password);
  const client = registryClientFor(ref, opts.ctx);
  const log = rootLogger.child({ image });
  try {
    const subject = await resolveSubject(client, ref, opts.subjectDigest, opts.signal);
    const st = typeof statement === 'function' ? statement(subject) : statement;
    if (!statementCovers(st, subject.digest)) {
      throw new InvalidInputError(`the statement's subject does not name ${subject.digest}, the image being attested; nothing was attached`);
    }
    const envelope = signEnvelope(Buffer.from(JSON.stringify(st)), IN_TOTO_PAYLOAD_TYPE, key);
    const repo = ref.repository;
    const envBytes = Buffer.from(JSON.stringify(envelope));
    const layer = await pushSmallBlob(client, repo, envBytes, DSSE_MEDIA_TYPE, opts.signal);
    const result: AttachResult = { subject, predicateType: st.predicateType, envelope: layer.digest };
    if (opts.referrer !== false) {
      await pushSmallBlob(client, repo, Buffer.from('{}'), MediaType.OciEmpty, opts.signal);
      const annotations = {
        [PREDICATE_TYPE_ANNOTATION]: st.predicateType,
        'org.opencontainers.image.created': rfc3339Seconds(),
      };
      const doc: ImageManifest = {
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        artifactType: ATTESTATION_ARTIFACT_TYPE,
        config: EMPTY_CONFIG,
        layers: [{ ...layer, annotations: { [PREDICATE_TYPE_ANNOTATION]: st.predicateType } }],
        subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
        annotations,
      };
      const manifest = encodeManifest(doc);
      const pushed = await pushReferrer(client, repo, manifest, subject.digest, { artifactType: ATTESTATION_ARTIFACT_TYPE, annotations }, opts.signal);
      result.referrer = { digest: manifest.digest, ...pushed };
    }
    if (opts.cosignTag !== false) {
      const cosignLayer: Descriptor = { ...layer, annotations: { [SIGNATURE_ANNOTATION]: '', predicateType: st.predicateType } };
      // cosign keeps one layer per attestation and replaces an identical one rather than repeating it.
      result.cosign = await updateAttachment(
        client,
        repo,
        subject.digest,
        'att',
        (layers) => [...layers.filter((l) => l.digest !== cosignLayer.digest), cosignLayer],
        opts.signal,
      );
    }
    log.info(
      { subject: subject.digest, predicateType: st.predicateType, referrer: result.referrer?.digest, via: result.referrer?.via },
      'attestation attached',
    );
    return result;
  } finally {
    await client.close();
  }
}

export interface AttachSbomOptions extends AttachOptions {
  format?: SbomFormat;
  /** For an index: the platform whose image is catalogued and attested (default: the host's). */
  platform?: string;
  created?: Date;
  /** An SBOM already generated for this image (by generateSbom), so it is not catalogued twice. */
  sbom?: SbomResult;
  /** Called with the SBOM before it is signed (e.g. to also write it to a file). */
  onSbom?: (sbom: SbomResult) => Promise<void> | void;
}

/**
 * Catalogs an image in a registry, and attaches its SBOM as a signed in-toto attestation (SPDX or
 * CycloneDX predicate) to the image that was catalogued: the image itself, or for an index the
 * chosen platform's image. For `stevedore build --sbom` and ImageBuild `spec.sbom`.
 */
export async function attachSbom(
  image: string,
  opts: AttachSbomOptions,
): Promise<AttachResult & { sbom: Pick<SbomResult, 'format' | 'predicateType'> & { packages: number } }> {
  const ref = registryRef(image);
  if (!opts.sbom) {
    // Refuse a missing image with the attach-time reason before spending a catalog on it.
    const client = registryClientFor(ref, opts.ctx);
    try {
      await resolveSubject(client, ref, undefined, opts.signal);
    } finally {
      await client.close();
    }
  }
  const sbom =
    opts.sbom ?? (await generateSbom(image, { format: opts.format, platform: opts.platform, ctx: opts.ctx, created: opts.created, signal: opts.signal }));
  await opts.onSbom?.(sbom);
  const result = await attachStatement(image, (subject) => makeStatement({ name: subject.name, digest: subject.digest }, sbom.predicateType, sbom.document), {
    ...opts,
    subjectDigest: sbom.catalog.image.digest,
  });
  return { ...result, sbom: { format: sbom.format, predicateType: sbom.predicateType, packages: sbom.catalog.packages.length } };
}

/** Attaches a provenance statement (see provenanceStatement) to the image it names. */
export async function attachProvenance(image: string, statement: Statement, opts: AttachOptions): Promise<AttachResult> {
  const ref = registryRef(image);
  const digests = statement.subject
    .map((s) => (s.digest.sha256 ? (`sha256:${s.digest.sha256}` as Digest) : undefined))
    .filter((d): d is Digest => d !== undefined);
  const subjectDigest = ref.digest ?? digests[0];
  return attachStatement(image, statement, { ...opts, subjectDigest });
}
