/**
 * Attachments across an air gap: cosign's `sha256-<hex>.sig` / `.att` / `.sbom` tags and the OCI
 * referrers fallback tag `sha256-<hex>` travel into an OCI layout as ref names of the same name
 * (export), and from the layout back to a registry as tags (import). The disconnected side then has
 * the signatures its `sigstoreSigned` policy and `cosign verify` need. Referrers that a source
 * registry serves only through the referrers API (no fallback tag) are not exported yet.
 */
import type { Digest } from '../oci/digest.js';
import { OciLayout } from '../oci/layout.js';
import { headManifest } from '../registry/manifests.js';
import { referrersTag } from '../registry/referrers.js';
import { DockerDestination, DockerSource } from '../transports/docker.js';
import { parseOciReference } from '../transports/oci.js';
import type { AttachmentStore } from '../transports/types.js';
import { mapLimit } from '../util/pool.js';
import { copyImage } from './image.js';

/** Tags (and ref names) that hold what is attached to `digest`. */
function attachmentTags(digest: Digest): string[] {
  const base = referrersTag(digest);
  return [`${base}.sig`, `${base}.att`, `${base}.sbom`, base];
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
  return written;
}

/** Copies the layout's attachment ref names for `digests` to a registry repository as tags; returns the tags written. */
export async function importAttachments(dir: string, dest: AttachmentStore, digests: readonly Digest[], opts: { signal?: AbortSignal } = {}): Promise<string[]> {
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
