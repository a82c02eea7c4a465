/**
 * pushReferrer and addToFallbackIndex (registry/referrers.ts), the one way signatures, sigstore
 * bundles and attestations are stored as OCI 1.1 referrers: against a real registry
 * (distribution 2.8, no referrers API, so the `sha256-<hex>` fallback index), with the fault
 * proxy standing in for a registry that has the API (`OCI-Subject`) or that stores other bytes.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Descriptor } from '../../src/oci/descriptor.js';
import { digestBytes } from '../../src/oci/digest.js';
import { encodeManifest, parseManifest, type ImageIndex, type RawManifest } from '../../src/oci/manifest.js';
import { MediaType } from '../../src/oci/mediatype.js';
import { uploadBlob } from '../../src/registry/blobs.js';
import { RegistryClient } from '../../src/registry/client.js';
import { getManifest, headManifest, putManifest } from '../../src/registry/manifests.js';
import { addToFallbackIndex, listReferrers, pushReferrer, referrersTag } from '../../src/registry/referrers.js';
import { DigestMismatchError } from '../../src/util/errors.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { caught } from './helpers.js';

let reg: TestRegistry;
let proxy: FaultProxy;
let client: RegistryClient;

beforeAll(async () => {
  reg = await startRegistry({ name: 'reg-referrers-push' });
  proxy = await startFaultProxy(reg.url);
  client = new RegistryClient({ registry: proxy.host });
});

afterEach(() => {
  proxy.clearFaults();
  proxy.clearHits();
});

afterAll(async () => {
  await client?.close();
  await proxy?.stop();
  await reg?.stop();
});

async function put(repo: string, data: Buffer, mediaType: string): Promise<Descriptor> {
  const desc: Descriptor = { mediaType, digest: digestBytes(data), size: data.length };
  await uploadBlob(client, repo, desc, Readable.from([data]));
  return desc;
}

/** An image to refer to, pushed under `v1`. */
async function subjectImage(repo: string): Promise<RawManifest> {
  const config = await put(repo, Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', n: randomBytes(4).toString('hex') })), MediaType.OciConfig);
  const layer = await put(repo, randomBytes(64), MediaType.OciLayerGzip);
  const raw = encodeManifest({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [layer] });
  await putManifest(client, repo, 'v1', raw);
  return raw;
}

/** An artifact manifest about `subject`, its blobs in the registry (not the manifest). */
async function artifact(repo: string, subject: RawManifest, artifactType: string, annotations?: Record<string, string>): Promise<RawManifest> {
  const empty = await put(repo, Buffer.from('{}'), MediaType.OciEmpty);
  const payload = await put(repo, randomBytes(32), 'application/octet-stream');
  return encodeManifest({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType,
    config: empty,
    layers: [payload],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.bytes.length },
    ...(annotations ? { annotations } : {}),
  });
}

async function fallback(repo: string, subject: RawManifest): Promise<ImageIndex> {
  const raw = await getManifest(client, repo, referrersTag(subject.digest));
  expect(raw.mediaType).toBe(MediaType.OciIndex);
  const parsed = parseManifest(raw.bytes, raw.mediaType);
  if (parsed.kind !== 'index') throw new Error('the fallback tag holds no index');
  return parsed.index;
}

const tagPuts = (repo: string, subject: RawManifest) => proxy.hits(`/v2/${repo}/manifests/${referrersTag(subject.digest)}`).filter((h) => h.method === 'PUT');

describe('pushReferrer on a registry without the referrers API', () => {
  it('stores the manifest by digest and lists it in the fallback index, with its artifactType and annotations, once', async () => {
    const subject = await subjectImage('refpush/app');
    const annotations = { 'org.opencontainers.image.created': '2026-01-02T03:04:05Z' };
    const sbom = await artifact('refpush/app', subject, 'application/spdx+json', annotations);
    const first = await pushReferrer(client, 'refpush/app', sbom, subject.digest, { artifactType: 'application/spdx+json', annotations });
    expect(first).toEqual({ via: 'tag', tag: referrersTag(subject.digest) });
    expect((await getManifest(client, 'refpush/app', sbom.digest)).bytes.equals(sbom.bytes)).toBe(true);
    const entry: Descriptor = {
      mediaType: MediaType.OciManifest,
      digest: sbom.digest,
      size: sbom.bytes.length,
      artifactType: 'application/spdx+json',
      annotations,
    };
    expect((await fallback('refpush/app', subject)).manifests).toEqual([entry]);
    expect(tagPuts('refpush/app', subject)).toHaveLength(1);

    // Again: the index already lists it, so it is neither repeated nor written again.
    proxy.clearHits();
    expect(await pushReferrer(client, 'refpush/app', sbom, subject.digest, { artifactType: 'application/spdx+json', annotations })).toEqual(first);
    expect((await fallback('refpush/app', subject)).manifests).toEqual([entry]);
    expect(tagPuts('refpush/app', subject)).toEqual([]);

    // A second referrer is added after the first; empty annotations are left off its entry.
    const sig = await artifact('refpush/app', subject, 'application/vnd.dev.sigstore.bundle.v0.3+json');
    await pushReferrer(client, 'refpush/app', sig, subject.digest, { artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json', annotations: {} });
    const both = (await fallback('refpush/app', subject)).manifests;
    expect(both).toEqual([
      entry,
      { mediaType: MediaType.OciManifest, digest: sig.digest, size: sig.bytes.length, artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json' },
    ]);
    expect(await listReferrers(client, 'refpush/app', subject.digest)).toEqual({ manifests: both, via: 'tag' });
  });

  it("keeps the fallback index's own annotations when it extends it", async () => {
    const subject = await subjectImage('refpush/annotated');
    const tag = referrersTag(subject.digest);
    const existing: ImageIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [], annotations: { 'example.com/kept': 'yes' } };
    await putManifest(client, 'refpush/annotated', tag, encodeManifest(existing));
    const att = await artifact('refpush/annotated', subject, 'application/vnd.in-toto+json');
    await pushReferrer(client, 'refpush/annotated', att, subject.digest, { artifactType: 'application/vnd.in-toto+json' });
    const index = await fallback('refpush/annotated', subject);
    expect(index.annotations).toEqual({ 'example.com/kept': 'yes' });
    expect(index.manifests.map((m) => m.digest)).toEqual([att.digest]);
  });
});

describe('pushReferrer on a registry with the referrers API', () => {
  it('writes no fallback index when the registry answers with OCI-Subject', async () => {
    const subject = await subjectImage('refpush/api');
    const att = await artifact('refpush/api', subject, 'application/vnd.in-toto+json');
    proxy.addFault({
      method: 'PUT',
      pathRegex: `/v2/refpush/api/manifests/${att.digest}`,
      kind: 'status',
      status: 201,
      headers: { 'OCI-Subject': subject.digest, 'Docker-Content-Digest': att.digest },
      body: '',
    });
    expect(await pushReferrer(client, 'refpush/api', att, subject.digest, { artifactType: 'application/vnd.in-toto+json' })).toEqual({ via: 'api' });
    expect(proxy.hits(`/manifests/${att.digest}`).map((h) => [h.method, h.status])).toEqual([['PUT', 201]]);
    expect(proxy.hits(referrersTag(subject.digest))).toEqual([]);
  });
});

describe('bad answers', () => {
  it('refuses a registry that says it stored other bytes, and writes no fallback index', async () => {
    const subject = await subjectImage('refpush/lying');
    const att = await artifact('refpush/lying', subject, 'application/vnd.in-toto+json');
    const other = digestBytes(Buffer.from('something else'));
    proxy.addFault({
      method: 'PUT',
      pathRegex: `/manifests/${att.digest}`,
      kind: 'status',
      status: 201,
      headers: { 'Docker-Content-Digest': other },
      body: '',
    });
    const err = await caught(pushReferrer(client, 'refpush/lying', att, subject.digest, { artifactType: 'application/vnd.in-toto+json' }));
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect(err.message).toContain(other);
    expect(await headManifest(client, 'refpush/lying', referrersTag(subject.digest))).toBeUndefined();
  });

  it('addToFallbackIndex replaces a fallback tag that holds an image, not an index, with an index', async () => {
    const subject = await subjectImage('refpush/odd');
    const tag = referrersTag(subject.digest);
    // A stray image under the fallback tag (another tool's mistake): it lists no referrers.
    await putManifest(client, 'refpush/odd', tag, subject);
    const att = await artifact('refpush/odd', subject, 'application/vnd.in-toto+json');
    await putManifest(client, 'refpush/odd', att.digest, att);
    const desc: Descriptor = { mediaType: att.mediaType, digest: att.digest, size: att.bytes.length, artifactType: 'application/vnd.in-toto+json' };
    expect(await addToFallbackIndex(client, 'refpush/odd', subject.digest, desc)).toBe(tag);
    expect((await fallback('refpush/odd', subject)).manifests).toEqual([desc]);
  });
});
