/**
 * The registry operations one by one against a real registry (distribution 2.8), with the fault
 * proxy in front purely as a recorder of what went over the wire: chunked and monolithic uploads,
 * cross-repository mounts, paginated tag lists, the referrers tag fallback (read, and written by
 * pushReferrer, also against a stand-in for a registry with the referrers API), and deletes.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Descriptor } from '../../src/oci/descriptor.js';
import { digestBytes, digestHex } from '../../src/oci/digest.js';
import { encodeManifest, parseManifest, type ImageIndex, type ImageManifest, type RawManifest } from '../../src/oci/manifest.js';
import { MediaType } from '../../src/oci/mediatype.js';
import { deleteBlob, getBlob, headBlob, mountBlob, uploadBlob } from '../../src/registry/blobs.js';
import { RegistryClient } from '../../src/registry/client.js';
import { deleteManifest, getManifest, headManifest, putManifest } from '../../src/registry/manifests.js';
import { addToFallbackIndex, listReferrers, pushReferrer, referrersTag } from '../../src/registry/referrers.js';
import { listTags } from '../../src/registry/tags.js';
import { DigestMismatchError } from '../../src/util/errors.js';
import { streamToBuffer } from '../../src/util/streams.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { caught } from './helpers.js';

let reg: TestRegistry;
let proxy: FaultProxy;
let client: RegistryClient;

beforeAll(async () => {
  reg = await startRegistry({ name: 'reg-api' });
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

function blob(data: Buffer, mediaType: string = MediaType.OciLayerGzip): Descriptor {
  return { mediaType, digest: digestBytes(data), size: data.length };
}

async function put(repo: string, data: Buffer, mediaType?: string): Promise<Descriptor> {
  const desc = blob(data, mediaType);
  await uploadBlob(client, repo, desc, Readable.from([data]));
  return desc;
}

async function read(repo: string, desc: Descriptor): Promise<Buffer> {
  return streamToBuffer(await getBlob(client, repo, desc), 64 * 1024 * 1024, desc.digest);
}

/** A small image manifest (config + one layer) pushed under `tag`. */
async function pushImage(repo: string, tag: string, extra: Partial<ImageManifest> = {}): Promise<RawManifest> {
  const config = await put(
    repo,
    Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, n: randomBytes(8).toString('hex') })),
    MediaType.OciConfig,
  );
  const layer = await put(repo, randomBytes(1024));
  const m = encodeManifest({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [layer], ...extra });
  await putManifest(client, repo, tag, m);
  return m;
}

describe('blob uploads', () => {
  it('uploads in PATCH chunks of chunkSize, and the registry serves the same bytes', async () => {
    const data = randomBytes(300 * 1024 + 123);
    const desc = blob(data);
    // A stream of odd-sized pieces, so chunk boundaries never line up with what the source yields.
    const pieces: Buffer[] = [];
    for (let off = 0; off < data.length; off += 77_777) pieces.push(data.subarray(off, off + 77_777));
    await uploadBlob(client, 'chunked/app', desc, Readable.from(pieces), { chunkSize: 64 * 1024 });
    const patches = proxy.hits('/blobs/uploads/').filter((h) => h.method === 'PATCH');
    expect(patches).toHaveLength(Math.ceil(data.length / (64 * 1024)));
    expect(patches.map((h) => h.headers['content-range'])).toEqual(patches.map((_, i) => `${i * 65536}-${Math.min((i + 1) * 65536, data.length) - 1}`));
    expect(patches.every((h) => h.status === 202)).toBe(true);
    const puts = proxy.hits('/blobs/uploads/').filter((h) => h.method === 'PUT');
    expect(puts).toHaveLength(1);
    expect(puts[0]!.status).toBe(201);
    expect(await headBlob(client, 'chunked/app', desc.digest)).toBe(data.length);
    expect((await read('chunked/app', desc)).equals(data)).toBe(true);
  });

  it('a chunked upload whose bytes do not match the digest stores nothing', async () => {
    const data = randomBytes(100 * 1024);
    const desc = blob(randomBytes(100 * 1024));
    const err = await caught(uploadBlob(client, 'chunked/bad', desc, Readable.from([data]), { chunkSize: 32 * 1024 }));
    expect(err.code).toBe('DIGEST_MISMATCH');
    expect(await headBlob(client, 'chunked/bad', desc.digest)).toBeUndefined();
    expect(await headBlob(client, 'chunked/bad', digestBytes(data))).toBeUndefined();
  });

  it('uploads monolithically by default (one PUT, no PATCH)', async () => {
    const data = randomBytes(200 * 1024);
    const desc = await put('mono/app', data);
    expect(proxy.hits('/blobs/uploads/').filter((h) => h.method === 'PATCH')).toHaveLength(0);
    expect(await headBlob(client, 'mono/app', desc.digest)).toBe(data.length);
    expect((await read('mono/app', desc)).equals(data)).toBe(true);
  });

  it('mounts a blob from another repository, and reports false when the source lacks it', async () => {
    const data = randomBytes(4096);
    const desc = await put('mount/src', data);
    expect(await mountBlob(client, 'mount/dst', desc.digest, 'mount/src')).toBe(true);
    expect(await headBlob(client, 'mount/dst', desc.digest)).toBe(data.length);
    const missing = digestBytes(randomBytes(16));
    expect(await mountBlob(client, 'mount/dst', missing, 'mount/src')).toBe(false);
    expect(await headBlob(client, 'mount/dst', missing)).toBeUndefined();
  });

  it('a missing blob is NOT_FOUND from getBlob itself', async () => {
    const err = await caught(getBlob(client, 'mono/app', blob(randomBytes(10))));
    expect(err.code).toBe('NOT_FOUND');
  });

  it('deletes a blob', async () => {
    const desc = await put('del/blob', randomBytes(2048));
    await deleteBlob(client, 'del/blob', desc.digest);
    expect(await headBlob(client, 'del/blob', desc.digest)).toBeUndefined();
  });
});

describe('tags', () => {
  it('lists all 5 tags with pageSize 2 from distribution 2.8 (which answers in one page)', async () => {
    const m = await pushImage('tags/app', 't1');
    for (const t of ['t2', 't3', 't4', 't5']) await putManifest(client, 'tags/app', t, m);
    proxy.clearHits();
    const tags = await listTags(client, 'tags/app', { pageSize: 2 });
    expect([...tags].sort()).toEqual(['t1', 't2', 't3', 't4', 't5']);
    // This registry ignores `n` and sends no Link header: one request, and the client asked for n=2.
    const pages = proxy.hits('/tags/list');
    expect(pages.map((h) => h.path)).toEqual(['/v2/tags/app/tags/list?n=2']);
  });

  it('follows Link pagination: 5 tags with pageSize 2 take 3 pages and come back complete', async () => {
    // distribution 2.8 does not paginate, so the proxy answers as a paginating registry
    // (distribution 3, Harbor) would: relative and absolute Link targets, the last page without one.
    const page = (tags: string[], next?: string) => ({
      kind: 'status' as const,
      status: 200,
      body: { name: 'tags/paged', tags },
      headers: { 'Content-Type': 'application/json', ...(next ? { Link: `<${next}>; rel="next"` } : {}) },
    });
    proxy.addFault({ method: 'GET', pathRegex: /\/tags\/list\?n=2$/, ...page(['t1', 't2'], '/v2/tags/paged/tags/list?last=t2&n=2') });
    proxy.addFault({ method: 'GET', pathRegex: /\/tags\/list\?last=t2&n=2$/, ...page(['t3', 't4'], `${proxy.url}/v2/tags/paged/tags/list?last=t4&n=2`) });
    proxy.addFault({ method: 'GET', pathRegex: /\/tags\/list\?last=t4&n=2$/, ...page(['t5']) });
    const tags = await listTags(client, 'tags/paged', { pageSize: 2 });
    expect(tags).toEqual(['t1', 't2', 't3', 't4', 't5']);
    const pages = proxy.hits('/tags/list');
    expect(pages.map((h) => h.path)).toEqual(['/v2/tags/paged/tags/list?n=2', '/v2/tags/paged/tags/list?last=t2&n=2', '/v2/tags/paged/tags/list?last=t4&n=2']);
    expect(pages.every((h) => h.status === 200)).toBe(true);
  });

  it('a repository that does not exist is NOT_FOUND', async () => {
    const err = await caught(listTags(client, 'tags/none'));
    expect(err.code).toBe('NOT_FOUND');
  });
});

describe('referrers', () => {
  it('falls back to the sha256-<hex> tag index when the registry has no referrers API', async () => {
    const subject = await pushImage('ref/app', 'v1');
    const subjectDesc: Descriptor = { mediaType: subject.mediaType, digest: subject.digest, size: subject.bytes.length };
    // Two artifacts about the subject: an "SBOM" and a "signature", each an OCI manifest with artifactType.
    const empty = await put('ref/app', Buffer.from('{}'), MediaType.OciEmpty);
    const artifacts: Descriptor[] = [];
    for (const artifactType of ['application/spdx+json', 'application/vnd.dev.cosign.artifact.sig.v1+json']) {
      const payload = await put('ref/app', Buffer.from(JSON.stringify({ kind: artifactType, n: randomBytes(4).toString('hex') })), 'application/json');
      const doc = { schemaVersion: 2 as const, mediaType: MediaType.OciManifest, artifactType, config: empty, layers: [payload], subject: subjectDesc };
      const raw = encodeManifest(doc);
      await putManifest(client, 'ref/app', raw.digest, raw);
      artifacts.push({ mediaType: raw.mediaType, digest: raw.digest, size: raw.bytes.length, artifactType });
    }
    const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: artifacts };
    const tag = referrersTag(subject.digest);
    expect(tag).toBe(`sha256-${digestHex(subject.digest)}`);
    await putManifest(client, 'ref/app', tag, encodeManifest(index));

    const all = await listReferrers(client, 'ref/app', subject.digest);
    expect(all.via).toBe('tag');
    expect(all.manifests).toEqual(artifacts);
    const sboms = await listReferrers(client, 'ref/app', subject.digest, { artifactType: 'application/spdx+json' });
    expect(sboms.manifests).toEqual([artifacts[0]]);
    // The API was asked first (distribution 2.8 answers 404), then the tag.
    const paths = proxy
      .hits()
      .filter((h) => h.method === 'GET')
      .map((h) => h.path);
    expect(paths.some((p) => p.includes(`/referrers/${subject.digest}`))).toBe(true);
    expect(paths.some((p) => p.endsWith(`/manifests/${tag}`))).toBe(true);
  });

  it('a subject with no referrers has an empty list', async () => {
    const subject = await pushImage('ref/lonely', 'v1');
    const res = await listReferrers(client, 'ref/lonely', subject.digest);
    expect(res).toEqual({ manifests: [], via: 'tag' });
  });
});

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

describe('pushReferrer (the one push of signatures, bundles and attestations as referrers) on a registry without the referrers API', () => {
  it('stores the manifest by digest and lists it in the fallback index, with its artifactType and annotations, once', async () => {
    const subject = await pushImage('refpush/app', 'v1');
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
    const subject = await pushImage('refpush/annotated', 'v1');
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
    const subject = await pushImage('refpush/api', 'v1');
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

describe('pushReferrer: bad answers', () => {
  it('refuses a registry that says it stored other bytes, and writes no fallback index', async () => {
    const subject = await pushImage('refpush/lying', 'v1');
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
    const subject = await pushImage('refpush/odd', 'v1');
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

describe('manifests', () => {
  it('head, get and delete a manifest by digest; afterwards it is gone', async () => {
    const m = await pushImage('del/app', 'v1');
    const head = await headManifest(client, 'del/app', 'v1');
    expect(head).toEqual({ digest: m.digest, mediaType: MediaType.OciManifest, size: m.bytes.length });
    const got = await getManifest(client, 'del/app', m.digest);
    expect(got.bytes.equals(m.bytes)).toBe(true);
    await deleteManifest(client, 'del/app', m.digest);
    expect(await headManifest(client, 'del/app', 'v1')).toBeUndefined();
    expect(await headManifest(client, 'del/app', m.digest)).toBeUndefined();
    const again = await caught(deleteManifest(client, 'del/app', m.digest));
    expect(again.code).toBe('NOT_FOUND');
  });
});
