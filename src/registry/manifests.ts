import { digestAlgorithm, digestBytes, isDigest, verifyBytes, type Digest } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES, detectManifestMediaType, type RawManifest } from '../oci/manifest.js';
import { MANIFEST_ACCEPT } from '../oci/mediatype.js';
import { DigestMismatchError, InvalidInputError } from '../util/errors.js';
import { repositoryScope } from './auth.js';
import { readBodyCapped, type RegistryClient } from './client.js';

export interface ManifestHead {
  digest: Digest;
  mediaType: string;
  size: number;
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function mediaTypeOf(contentType: string | undefined): string | undefined {
  return contentType?.split(';')[0]?.trim() || undefined;
}

/**
 * HEAD a manifest by tag or digest: its digest, media type and size without downloading it (and,
 * on Docker Hub, without spending a pull). Undefined when it does not exist.
 */
export async function headManifest(
  client: RegistryClient,
  repo: string,
  reference: string,
  opts: { signal?: AbortSignal } = {},
): Promise<ManifestHead | undefined> {
  const res = await client.request({
    method: 'HEAD',
    path: `/v2/${repo}/manifests/${reference}`,
    scopes: [repositoryScope(repo, ['pull'])],
    headers: { accept: MANIFEST_ACCEPT },
    expect: [200],
    allowStatus: [404],
    signal: opts.signal,
  });
  await res.body.dump();
  if (res.status === 404) return undefined;
  const digest = headerValue(res.headers['docker-content-digest']);
  const mediaType = mediaTypeOf(headerValue(res.headers['content-type'])) ?? '';
  const size = Number(headerValue(res.headers['content-length']) ?? -1);
  if (digest && isDigest(digest)) return { digest, mediaType, size };
  if (isDigest(reference)) return { digest: reference, mediaType, size };
  // No digest header: the only honest answer needs the body.
  const m = await getManifest(client, repo, reference, opts);
  return { digest: m.digest, mediaType: m.mediaType, size: m.bytes.length };
}

/**
 * GET a manifest by tag or digest, capped at 4 MiB, and verified: by digest, the bytes must hash to
 * it; by tag, they must hash to the Docker-Content-Digest the registry claims.
 */
export async function getManifest(client: RegistryClient, repo: string, reference: string, opts: { signal?: AbortSignal } = {}): Promise<RawManifest> {
  const res = await client.request({
    method: 'GET',
    path: `/v2/${repo}/manifests/${reference}`,
    scopes: [repositoryScope(repo, ['pull'])],
    headers: { accept: MANIFEST_ACCEPT },
    expect: [200],
    signal: opts.signal,
  });
  const where = `manifest ${client.registry}/${repo}:${reference}`;
  const bytes = await readBodyCapped(res.body, MAX_MANIFEST_BYTES, where, headerValue(res.headers['content-length']));
  let digest: Digest;
  if (isDigest(reference)) {
    verifyBytes(where, bytes, reference);
    digest = reference;
  } else {
    digest = digestBytes(bytes);
    const claimed = headerValue(res.headers['docker-content-digest']);
    if (claimed && isDigest(claimed)) {
      const ours = digestBytes(bytes, digestAlgorithm(claimed));
      if (ours !== claimed) throw new DigestMismatchError(where, claimed, ours);
      digest = claimed;
    }
  }
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new InvalidInputError(`${where}: malformed manifest (not JSON)`);
  }
  const mediaType = detectManifestMediaType(doc, mediaTypeOf(headerValue(res.headers['content-type'])));
  return { bytes, mediaType, digest };
}

/** What a registry said about a manifest it stored. */
export interface PutManifestResult {
  /**
   * The `OCI-Subject` header: a registry with the referrers API (OCI distribution 1.1) sends it
   * when it indexed the manifest's `subject`. Undefined when the registry did not.
   */
  ociSubject?: string;
}

/** PUT a manifest under a tag or its digest; the registry's Docker-Content-Digest must agree with ours. */
export async function putManifest(
  client: RegistryClient,
  repo: string,
  reference: string,
  manifest: RawManifest,
  opts: { signal?: AbortSignal } = {},
): Promise<PutManifestResult> {
  const res = await client.request({
    method: 'PUT',
    path: `/v2/${repo}/manifests/${reference}`,
    scopes: [repositoryScope(repo, ['pull', 'push'])],
    headers: { 'content-type': manifest.mediaType, 'content-length': String(manifest.bytes.length) },
    body: manifest.bytes,
    expect: [201, 200, 202],
    signal: opts.signal,
  });
  await res.body.dump();
  const claimed = headerValue(res.headers['docker-content-digest']);
  if (claimed && isDigest(claimed) && digestAlgorithm(claimed) === digestAlgorithm(manifest.digest) && claimed !== manifest.digest) {
    throw new DigestMismatchError(`manifest stored at ${client.registry}/${repo}:${reference}`, manifest.digest, claimed);
  }
  const subject = headerValue(res.headers['oci-subject']);
  return subject ? { ociSubject: subject } : {};
}

/** A manifest by tag or digest, or undefined when the registry has none. */
export async function getManifestIfExists(
  client: RegistryClient,
  repo: string,
  reference: string,
  opts: { signal?: AbortSignal } = {},
): Promise<RawManifest | undefined> {
  try {
    return await getManifest(client, repo, reference, opts);
  } catch (err) {
    const e = err as { code?: string; status?: number };
    if (e.code === 'NOT_FOUND' || e.status === 404 || e.code === 'MANIFEST_UNKNOWN') return undefined;
    throw err;
  }
}

/** DELETE a manifest; registries only delete by digest (a tag is resolved first). */
export async function deleteManifest(client: RegistryClient, repo: string, digest: Digest, opts: { signal?: AbortSignal } = {}): Promise<void> {
  const res = await client.request({
    method: 'DELETE',
    path: `/v2/${repo}/manifests/${digest}`,
    scopes: [repositoryScope(repo, ['delete']), repositoryScope(repo, ['pull'])],
    expect: [202, 200],
    signal: opts.signal,
  });
  await res.body.dump();
}
