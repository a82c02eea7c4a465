import type { Descriptor } from '../oci/descriptor.js';
import { digestHex, type Digest } from '../oci/digest.js';
import { parseManifest } from '../oci/manifest.js';
import { repositoryScope } from './auth.js';
import { readBodyCapped, type RegistryClient } from './client.js';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.js';
import { getManifest } from './manifests.js';

/** The tag-schema fallback of OCI distribution 1.1: referrers of `sha256:abc…` live in tag `sha256-abc…`. */
export function referrersTag(digest: Digest): string {
  return `${digest.slice(0, digest.indexOf(':'))}-${digestHex(digest)}`;
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
  let manifests: Descriptor[] = [];
  try {
    const raw = await getManifest(client, repo, referrersTag(subject), opts);
    const parsed = parseManifest(raw.bytes, raw.mediaType);
    if (parsed.kind === 'index') manifests = parsed.index.manifests;
  } catch (err) {
    if ((err as { code?: string }).code !== 'NOT_FOUND') throw err;
  }
  if (opts.artifactType) manifests = manifests.filter((m) => m.artifactType === opts.artifactType);
  return { manifests, via: 'tag' };
}
