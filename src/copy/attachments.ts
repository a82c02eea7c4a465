import type { Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';
import { MAX_MANIFEST_BYTES, parseManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatype.js';
import { repositoryScope } from '../registry/auth.js';
import { readBodyCapped } from '../registry/client.js';
import type { ImageReference } from '../oci/reference.js';
import type { RegistryClient } from '../registry/client.js';
import { headManifest } from '../registry/manifests.js';
import { addToFallbackIndex, ATTACHMENT_KINDS, attachmentTag, listReferrers, referrersTag } from '../registry/referrers.js';
import { DockerDestination, DockerSource } from '../transports/docker.js';
import { rootLogger } from '../util/log.js';
import { mapLimit } from '../util/pool.js';
import { copyImage, type AttachmentsCopied } from './image.js';

export interface AttachmentOptions {
  signal?: AbortSignal;
  jobs?: number;
}

export type { AttachmentsCopied };

/**
 * Carries what is attached to each digest from one repository to another, so a copied image keeps
 * its signatures and SBOMs: cosign's `sha256-<hex>.sig` / `.att` / `.sbom` tags, and OCI 1.1
 * referrers (through the referrers API or the `sha256-<hex>` fallback tag). A tag the destination
 * already holds at the same digest is skipped; blobs go by mount within a registry, as in any copy.
 * The subject images must already be at the destination (copy them first).
 */
export async function copyAttachments(
  src: { client: RegistryClient; ref: ImageReference },
  dest: { client: RegistryClient; ref: ImageReference },
  digests: readonly Digest[],
  opts: AttachmentOptions = {},
): Promise<AttachmentsCopied> {
  const out: AttachmentsCopied = { tags: [], referrers: [] };
  const log = rootLogger.child({ op: 'attachments', src: `${src.ref.registry}/${src.ref.repository}`, dest: `${dest.ref.registry}/${dest.ref.repository}` });
  const tagRef = (side: { ref: ImageReference }, tag: string): ImageReference => ({ registry: side.ref.registry, repository: side.ref.repository, tag });
  const copyTag = async (tag: string): Promise<boolean> => {
    // The destination is asked only when the source has the tag: most images have no
    // attachments, and then carrying them costs one HEAD per kind on the source alone.
    const have = await headManifest(src.client, src.ref.repository, tag, opts);
    if (!have) return false;
    const want = await headManifest(dest.client, dest.ref.repository, tag, opts).catch(() => undefined);
    if (have.digest === want?.digest) return false;
    const s = new DockerSource(tagRef(src, tag), src.client, false);
    const d = new DockerDestination(tagRef(dest, tag), dest.client, false);
    await copyImage(s, d, { all: true, signal: opts.signal, jobs: opts.jobs });
    out.tags.push(tag);
    return true;
  };
  await mapLimit([...digests], 4, async (digest) => {
    // The referrers question goes out with the cosign tag checks: one round trip, not two.
    const [manifests] = await Promise.all([
      referrersFromApi(src.client, src.ref.repository, digest, opts.signal),
      ...ATTACHMENT_KINDS.map((kind) => copyTag(attachmentTag(digest, kind))),
    ]);
    if (manifests === undefined) {
      // No referrers API: the fallback index lists every referrer. Copying it whole (every child
      // by digest, the index under its tag) carries them all, and a destination with the API
      // indexes each child as it arrives. A HEAD first: most images have none, and then this
      // costs no manifest GET.
      await copyTag(referrersTag(digest));
      return;
    }
    if (manifests.length === 0) return;
    for (const m of manifests) {
      const s = new DockerSource({ registry: src.ref.registry, repository: src.ref.repository, digest: m.digest }, src.client, false);
      const d = new DockerDestination({ registry: dest.ref.registry, repository: dest.ref.repository, digest: m.digest }, dest.client, false);
      await copyImage(s, d, { all: true, signal: opts.signal, jobs: opts.jobs });
      out.referrers.push(m.digest);
    }
    const there = await listReferrers(dest.client, dest.ref.repository, digest, opts);
    if (there.via === 'tag') {
      for (const m of manifests) await addToFallbackIndex(dest.client, dest.ref.repository, digest, m, opts.signal);
    }
  });
  if (out.tags.length + out.referrers.length > 0) log.info({ tags: out.tags.length, referrers: out.referrers.length }, 'attachments copied');
  return out;
}

/** The referrers API's answer for `digest`, or undefined when the registry has no such API. */
export async function referrersFromApi(client: RegistryClient, repo: string, digest: Digest, signal?: AbortSignal): Promise<Descriptor[] | undefined> {
  const res = await client.request({
    method: 'GET',
    path: `/v2/${repo}/referrers/${digest}`,
    scopes: [repositoryScope(repo, ['pull'])],
    headers: { accept: MediaType.OciIndex },
    expect: [200],
    allowStatus: [404, 400, 405],
    signal,
  });
  if (res.status !== 200) {
    await res.body.dump();
    return undefined;
  }
  const parsed = parseManifest(await readBodyCapped(res.body, MAX_MANIFEST_BYTES, `referrers of ${digest}`), MediaType.OciIndex);
  return parsed.kind === 'index' ? parsed.index.manifests : [];
}

/**
 * The digests whose attachments travel with a copy: the written top manifest, and the platform
 * manifests of an index that arrived unchanged (cosign `--recursive` signs those too).
 */
export function attachmentDigests(top: { digest: Digest; bytes: Buffer; mediaType: string }, writtenDigest: Digest): Digest[] {
  const out: Digest[] = [writtenDigest];
  if (top.digest === writtenDigest) {
    const parsed = parseManifest(top.bytes, top.mediaType);
    if (parsed.kind === 'index') out.push(...parsed.index.manifests.map((m) => m.digest));
  }
  return out;
}
