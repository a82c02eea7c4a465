/**
 * Attachments across an air gap: cosign's `sha256-<hex>.sig` / `.att` / `.sbom` tags and the OCI
 * referrers fallback tag `sha256-<hex>` travel into an OCI layout as ref names of the same name
 * (export), and from the layout back to a registry as tags (import). The disconnected side then has
 * the signatures its `sigstoreSigned` policy and `cosign verify` need. Referrers that a source
 * registry serves only through the referrers API (no fallback tag) are exported too: as the
 * fallback index the OCI distribution spec defines (an image index listing them, under the ref name
 * `sha256-<hex>`), with each referrer manifest and its blobs in the layout. The import then puts
 * that index back as the fallback tag, which a registry with or without the referrers API serves.
 */
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import { encodeManifest, parseManifest, type RawManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatype.js';
import { OciLayout } from '../oci/layout.js';
import { headManifest } from '../registry/manifests.js';
import { ATTACHMENT_KINDS, attachmentTag, referrersTag } from '../registry/referrers.js';
import { DockerDestination, DockerSource } from '../transports/docker.js';
import { parseOciReference } from '../transports/oci.js';
import type { AttachmentStore, ImageDestination, ImageSource } from '../transports/types.js';
import { mapLimit } from '../util/pool.js';
import { attachmentDigests, referrersFromApi } from './attachments.js';
import { copyImage, type CopyResult } from './image.js';

/** Tags (and ref names) that hold what is attached to `digest`. */
function attachmentTags(digest: Digest): string[] {
  return [...ATTACHMENT_KINDS.map((kind) => attachmentTag(digest, kind)), referrersTag(digest)];
}

/** Copies the attachment tags of `digests` from a registry repository into the layout at `dir`; returns the ref names written. */
export async function exportAttachments(src: AttachmentStore, dir: string, digests: readonly Digest[], opts: { signal?: AbortSignal } = {}): Promise<string[]> {
  const written: string[] = [];
  const tags = digests.flatMap(attachmentTags);
  await mapLimit(tags, 4, async (tag) => {
    const have = await headManifest(src.client, src.ref.repository, tag, opts);
    if (!have) return;
    const from = new DockerSource({ registry: src.ref.registry, repository: src.ref.repository, tag }, src.client, false);
    const to = await parseOciReference(`${dir}:${tag}`).newDestination();
    try {
      await copyImage(from, to, { all: true, signal: opts.signal });
      written.push(tag);
    } finally {
      await to.close();
    }
  });
  // Referrers known only to the referrers API (no fallback tag at the source).
  const layout = written.length > 0 || digests.length > 0 ? await OciLayout.open(dir, { create: true }) : undefined;
  for (const digest of digests) {
    if (written.includes(referrersTag(digest))) continue;
    if (await exportApiReferrers(src, layout!, digest, opts.signal)) written.push(referrersTag(digest));
  }
  return written;
}

/** The referrers fallback index for `referrers` (OCI distribution spec: an image index of their descriptors). */
export function fallbackIndex(referrers: readonly Descriptor[]): RawManifest {
  const manifests = referrers.map((d) => {
    const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
    if (d.artifactType) out.artifactType = d.artifactType;
    if (d.annotations) out.annotations = d.annotations;
    return out;
  });
  return encodeManifest({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests });
}

/**
 * Writes the referrers that the source's referrers API lists for `digest` (when it has that API and
 * no fallback tag was exported) into the layout, with their blobs, and their fallback index under
 * the ref name `sha256-<hex>`. Returns whether anything was written.
 */
async function exportApiReferrers(src: AttachmentStore, layout: OciLayout, digest: Digest, signal?: AbortSignal): Promise<boolean> {
  const referrers = await referrersFromApi(src.client, src.ref.repository, digest, signal);
  if (!referrers || referrers.length === 0) return false;
  for (const d of referrers) {
    const from = new DockerSource({ registry: src.ref.registry, repository: src.ref.repository, digest: d.digest }, src.client, false);
    const raw = await from.getManifest(undefined, { signal });
    const parsed = parseManifest(raw.bytes, raw.mediaType);
    const blobs = parsed.kind === 'image' ? [parsed.manifest.config, ...parsed.manifest.layers] : [];
    for (const b of blobs) {
      if (await layout.hasBlob(b.digest, b.size)) continue;
      await layout.writeBlob(await from.getBlob(b, { signal }), { digest: b.digest, size: b.size }, signal);
    }
    await layout.writeBlobBytes(raw.bytes, d.digest);
  }
  const index = fallbackIndex(referrers);
  await layout.writeBlobBytes(index.bytes, index.digest);
  await layout.setRef({ mediaType: MediaType.OciIndex, digest: index.digest, size: index.bytes.length }, referrersTag(digest));
  return true;
}

/** Copies the layout's attachment ref names for `digests` to a registry repository as tags; returns the tags written. */
export async function importAttachments(
  dir: string,
  dest: AttachmentStore,
  digests: readonly Digest[],
  opts: { signal?: AbortSignal } = {},
): Promise<string[]> {
  const layout = await OciLayout.open(dir);
  const names = new Set(await layout.refNames());
  const tags = digests.flatMap(attachmentTags).filter((t) => names.has(t));
  const written: string[] = [];
  await mapLimit(tags, 4, async (tag) => {
    const from = await parseOciReference(`${dir}:${tag}`).newSource();
    try {
      const there = await headManifest(dest.client, dest.ref.repository, tag, opts).catch(() => undefined);
      if (there && there.digest === (await layout.resolve(tag)).digest) return;
      const to = new DockerDestination({ registry: dest.ref.registry, repository: dest.ref.repository, tag }, dest.client, false);
      await copyImage(from, to, { all: true, signal: opts.signal });
      written.push(tag);
    } finally {
      await from.close();
    }
  });
  return written;
}

/**
 * What `copy` does for attachments between a registry and an OCI layout or archive (registry to
 * registry is copyAttachments): `beforeCommit` exports the source repository's attachments of the
 * written digests into the destination's layout before its commit (so an oci-archive's tar holds
 * them), `afterCommit` imports a layout's attachment ref names as tags once the image is at the
 * registry (a referrer needs its subject there). Undefined when neither applies.
 */
export function layoutAttachmentCarrier(
  src: ImageSource,
  dest: ImageDestination,
  opts: { signal?: AbortSignal } = {},
): { beforeCommit?: (result: CopyResult) => Promise<void>; afterCommit?: (result: CopyResult) => Promise<void> } | undefined {
  const digestsOf = (result: CopyResult): Digest[] => attachmentDigests(result.manifest, result.digest);
  const from = src.attachmentStore;
  const into = dest.layoutDir;
  if (from && into) {
    return {
      beforeCommit: async (result) => {
        await exportAttachments(from, into, digestsOf(result), opts);
      },
    };
  }
  const dir = src.layoutDir;
  const to = dest.attachmentStore;
  if (dir && to) {
    return {
      afterCommit: async (result) => {
        await importAttachments(dir, to, digestsOf(result), opts);
      },
    };
  }
  return undefined;
}
