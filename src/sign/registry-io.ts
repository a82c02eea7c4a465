import { Readable } from 'node:stream';
import type { Descriptor } from '../oci/descriptor.js';
import { digestBytes, type Digest } from '../oci/digest.js';
import { parseManifest, type ImageIndex, type RawManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatype.js';
import { repositoryScope } from '../registry/auth.js';
import { getBlob, headBlob, uploadBlob } from '../registry/blobs.js';
import type { RegistryClient } from '../registry/client.js';
import { getManifest, putManifest } from '../registry/manifests.js';
import { referrersTag } from '../registry/referrers.js';
import { streamToBuffer } from '../util/streams.js';

/**
 * Small documents of signatures and attestations (payloads, bundles, configs) go to and from the
 * registry whole: they are a few KiB, capped here so a hostile registry cannot make us buffer more.
 */
export const MAX_SIGNATURE_BLOB_BYTES = 4 * 1024 * 1024;

/** Uploads a small blob unless the repository already has it; returns its descriptor. */
export async function pushSmallBlob(client: RegistryClient, repo: string, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<Descriptor> {
  const desc: Descriptor = { mediaType, digest: digestBytes(bytes), size: bytes.length };
  const have = await headBlob(client, repo, desc.digest, { signal });
  if (have === undefined) await uploadBlob(client, repo, desc, Readable.from([bytes]), { signal });
  return desc;
}

/** Reads a small blob, verified against its digest and capped. */
export async function readSmallBlob(client: RegistryClient, repo: string, desc: Descriptor, signal?: AbortSignal): Promise<Buffer> {
  if (desc.size > MAX_SIGNATURE_BLOB_BYTES)
    throw new Error(`blob ${desc.digest} is ${desc.size} bytes; signature blobs are capped at ${MAX_SIGNATURE_BLOB_BYTES}`);
  const stream = await getBlob(client, repo, desc, { signal });
  return streamToBuffer(stream, MAX_SIGNATURE_BLOB_BYTES, `blob ${desc.digest}`);
}

/** A manifest by tag or digest, or undefined when the registry has none. */
export async function getManifestIfExists(client: RegistryClient, repo: string, reference: string, signal?: AbortSignal): Promise<RawManifest | undefined> {
  try {
    return await getManifest(client, repo, reference, { signal });
  } catch (err) {
    const e = err as { code?: string; status?: number };
    if (e.code === 'NOT_FOUND' || e.status === 404 || e.code === 'MANIFEST_UNKNOWN') return undefined;
    throw err;
  }
}

/**
 * Stores a manifest that has a `subject` (OCI 1.1 referrer). A registry with the referrers API
 * says so with the `OCI-Subject` header; for one without (distribution 2.8, many mirrors), the
 * descriptor is added to the index under the fallback tag `sha256-<hex>`, as the distribution
 * spec's tag schema says, so `listReferrers` (and cosign, oras) find it either way.
 */
export async function pushReferrer(
  client: RegistryClient,
  repo: string,
  manifest: RawManifest,
  subject: Digest,
  entry: { artifactType?: string; annotations?: Record<string, string> },
  signal?: AbortSignal,
): Promise<void> {
  const res = await client.request({
    method: 'PUT',
    path: `/v2/${repo}/manifests/${manifest.digest}`,
    scopes: [repositoryScope(repo, ['pull', 'push'])],
    headers: { 'content-type': manifest.mediaType, 'content-length': String(manifest.bytes.length) },
    body: manifest.bytes,
    expect: [201, 200, 202],
    signal,
  });
  await res.body.dump();
  if (res.headers['oci-subject']) return;
  const desc: Descriptor = { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.length };
  if (entry.artifactType) desc.artifactType = entry.artifactType;
  if (entry.annotations && Object.keys(entry.annotations).length > 0) desc.annotations = entry.annotations;
  await addToFallbackIndex(client, repo, subject, desc, signal);
}

/** Adds (once) a referrer descriptor to the `sha256-<hex>` fallback index of its subject. */
export async function addToFallbackIndex(client: RegistryClient, repo: string, subject: Digest, desc: Descriptor, signal?: AbortSignal): Promise<void> {
  const tag = referrersTag(subject);
  const existing = await getManifestIfExists(client, repo, tag, signal);
  let manifests: Descriptor[] = [];
  if (existing) {
    const parsed = parseManifest(existing.bytes, existing.mediaType);
    if (parsed.kind === 'index') manifests = parsed.index.manifests;
  }
  if (manifests.some((m) => m.digest === desc.digest)) return;
  const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [...manifests, desc] };
  const bytes = Buffer.from(JSON.stringify(index));
  await putManifest(client, repo, tag, { bytes, mediaType: MediaType.OciIndex, digest: digestBytes(bytes) }, { signal });
}
