import type { Descriptor } from '../oci/descriptor.js';
import { digestAlgorithm, isDigest, type Digest } from '../oci/digest.js';
import { encodeManifest, parseManifest, type ImageIndex, type RawManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatype.js';
import { repositoryScope } from '../registry/auth.js';
import type { RegistryClient } from '../registry/client.js';
import { DigestMismatchError } from '../util/errors.js';
import { getManifest, putManifest } from '../registry/manifests.js';
import { referrersTag } from '../registry/referrers.js';
import { IN_TOTO_PAYLOAD_TYPE } from './dsse.js';

/** artifactType of the referrer manifests we write: the envelope carries an in-toto statement. */
export const ATTESTATION_ARTIFACT_TYPE = IN_TOTO_PAYLOAD_TYPE;
/** Annotation naming the statement's predicate type, on referrer manifests (and on cosign's `.att` layers as `predicateType`). */
export const PREDICATE_TYPE_ANNOTATION = 'in-toto.io/predicate-type';

/** The OCI empty config `{}` that artifact manifests use (image-spec 1.1). */
export const EMPTY_CONFIG: Descriptor = {
  mediaType: MediaType.OciEmpty,
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
  data: 'e30=',
};

/**
 * PUTs a manifest by digest and reports whether the registry indexed its `subject` (an OCI 1.1
 * registry answers with an `OCI-Subject` header); the generic putManifest does not expose headers.
 */
async function putManifestByDigest(client: RegistryClient, repo: string, m: RawManifest, signal?: AbortSignal): Promise<boolean> {
  const res = await client.request({
    method: 'PUT',
    path: `/v2/${repo}/manifests/${m.digest}`,
    scopes: [repositoryScope(repo, ['pull', 'push'])],
    headers: { 'content-type': m.mediaType, 'content-length': String(m.bytes.length) },
    body: m.bytes,
    expect: [201, 200, 202],
    signal,
  });
  await res.body.dump();
  const claimed = res.headers['docker-content-digest'];
  const c = Array.isArray(claimed) ? claimed[0] : claimed;
  if (c && isDigest(c) && digestAlgorithm(c) === digestAlgorithm(m.digest) && c !== m.digest) {
    throw new DigestMismatchError(`referrer manifest stored at ${client.registry}/${repo}`, m.digest, c);
  }
  return res.headers['oci-subject'] !== undefined;
}

/**
 * Stores a referrer (a manifest whose `subject` is the image) the OCI 1.1 way: by digest, and, where
 * the registry has no referrers API (it did not answer with `OCI-Subject`), also in the fallback
 * index under the tag `sha256-<hex>` of the subject, which is read, extended and written back.
 */
export async function pushReferrer(
  client: RegistryClient,
  repo: string,
  referrer: RawManifest,
  entry: Descriptor,
  subject: Digest,
  signal?: AbortSignal,
): Promise<{ via: 'api' | 'tag'; tag?: string }> {
  if (await putManifestByDigest(client, repo, referrer, signal)) return { via: 'api' };
  const tag = referrersTag(subject);
  let index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
  try {
    const raw = await getManifest(client, repo, tag, { signal });
    const parsed = parseManifest(raw.bytes, raw.mediaType);
    if (parsed.kind === 'index') index = parsed.index;
  } catch (err) {
    if ((err as { code?: string }).code !== 'NOT_FOUND') throw err;
  }
  if (!index.manifests.some((m) => m.digest === entry.digest)) {
    index = { ...index, manifests: [...index.manifests, entry] };
    await putManifest(client, repo, tag, encodeManifest(index), { signal });
  }
  return { via: 'tag', tag };
}
