import type { Descriptor } from '../oci/descriptor.js';
import { digestHex, type Digest } from '../oci/digest.js';
import { encodeManifest, parseManifest, type ImageIndex, type RawManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatype.js';
import { repositoryScope } from './auth.js';
import { readBodyCapped, type RegistryClient } from './client.js';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.js';
import { getManifestIfExists, putManifest } from './manifests.js';

/** The tag-schema fallback of OCI distribution 1.1: referrers of `sha256:abc…` live in tag `sha256-abc…`. */
export function referrersTag(digest: Digest): string {
  return `${digest.slice(0, digest.indexOf(':'))}-${digestHex(digest)}`;
}

/** cosign's tag suffixes for what it attaches to a digest: signatures, attestations, SBOMs. */
export const ATTACHMENT_KINDS = ['sig', 'att', 'sbom'] as const;
export type AttachmentKind = (typeof ATTACHMENT_KINDS)[number];

/** cosign's tag for what of `kind` is attached to `digest`: `sha256-<hex>.sig` and so on. */
export function attachmentTag(digest: Digest, kind: AttachmentKind): string {
  return `${referrersTag(digest)}.${kind}`;
}

/**
 * Lists the manifests that refer to `subject` (signatures, SBOMs, attestations): the referrers API
 * where the registry has it, else the fallback tag's index. Optionally filtered by artifactType.
 */
export async function listReferrers(
  client: RegistryClient,
  repo: string,
  subject: Digest,
  opts: { artifactType?: string; signal?: AbortSignal } = {},
): Promise<{ manifests: Descriptor[]; via: 'api' | 'tag' }> {
  const q = opts.artifactType ? `?artifactType=${encodeURIComponent(opts.artifactType)}` : '';
  const res = await client.request({
    method: 'GET',
    path: `/v2/${repo}/referrers/${subject}${q}`,
    scopes: [repositoryScope(repo, ['pull'])],
    headers: { accept: 'application/vnd.oci.image.index.v1+json' },
    expect: [200],
    allowStatus: [404, 400, 405],
    signal: opts.signal,
  });
  if (res.status === 200) {
    const bytes = await readBodyCapped(res.body, MAX_MANIFEST_BYTES, `referrers of ${subject}`);
    const parsed = parseManifest(bytes, 'application/vnd.oci.image.index.v1+json');
    let manifests = parsed.kind === 'index' ? parsed.index.manifests : [];
    const filtered = res.headers['oci-filters-applied'];
    if (opts.artifactType && !filtered) manifests = manifests.filter((m) => m.artifactType === opts.artifactType);
    return { manifests, via: 'api' };
  }
  await res.body.dump();
  let manifests = (await fallbackIndex(client, repo, subject, opts.signal))?.manifests ?? [];
  if (opts.artifactType) manifests = manifests.filter((m) => m.artifactType === opts.artifactType);
  return { manifests, via: 'tag' };
}

/** The index under the fallback tag of `subject`, or undefined when there is none (or it is not an index). */
async function fallbackIndex(client: RegistryClient, repo: string, subject: Digest, signal?: AbortSignal): Promise<ImageIndex | undefined> {
  const raw = await getManifestIfExists(client, repo, referrersTag(subject), { signal });
  if (!raw) return undefined;
  const parsed = parseManifest(raw.bytes, raw.mediaType);
  return parsed.kind === 'index' ? parsed.index : undefined;
}

/** What a referrer's entry in the fallback index says of it besides its digest (the manifest's own fields). */
export interface ReferrerEntry {
  artifactType?: string;
  annotations?: Record<string, string>;
}

/**
 * Stores a referrer (a manifest whose `subject` is `subject`: a signature, a sigstore bundle, an
 * attestation, an SBOM) the OCI 1.1 way: by digest. A registry with the referrers API says it
 * indexed the subject with the `OCI-Subject` header; for one without (distribution 2.8, many
 * mirrors), the referrer's descriptor is also added to the index under the fallback tag
 * `sha256-<hex>`, as the distribution spec's tag schema says, so listReferrers (and cosign, oras)
 * find it either way. The registry's Docker-Content-Digest must agree with ours.
 */
export async function pushReferrer(
  client: RegistryClient,
  repo: string,
  manifest: RawManifest,
  subject: Digest,
  entry: ReferrerEntry,
  signal?: AbortSignal,
): Promise<{ via: 'api' | 'tag'; tag?: string }> {
  const stored = await putManifest(client, repo, manifest.digest, manifest, { signal });
  if (stored.ociSubject) return { via: 'api' };
  const desc: Descriptor = { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.length };
  if (entry.artifactType) desc.artifactType = entry.artifactType;
  if (entry.annotations && Object.keys(entry.annotations).length > 0) desc.annotations = entry.annotations;
  return { via: 'tag', tag: await addToFallbackIndex(client, repo, subject, desc, signal) };
}

/**
 * Adds a referrer's descriptor to the fallback index of its subject (tag `sha256-<hex>`): read,
 * extended and written back (created when missing); a descriptor the index already lists (by
 * digest) is not added twice, and then nothing is written. Returns the tag.
 */
export async function addToFallbackIndex(client: RegistryClient, repo: string, subject: Digest, desc: Descriptor, signal?: AbortSignal): Promise<string> {
  const tag = referrersTag(subject);
  const existing = await fallbackIndex(client, repo, subject, signal);
  if (existing?.manifests.some((m) => m.digest === desc.digest)) return tag;
  // The index's other fields (its annotations) are kept; the tag schema's index is an OCI index.
  const index: ImageIndex = { ...existing, schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [...(existing?.manifests ?? []), desc] };
  await putManifest(client, repo, tag, encodeManifest(index), { signal });
  return tag;
}
