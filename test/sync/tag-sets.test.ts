/**
 * `sync` under real-world tag sets (issue 16), on real registries: many tags on one digest, cosign
 * attachment tags beside the images, platform filters on re-syncs, prune next to shared digests.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { sync, type SyncReport } from '../../src/copy/sync.js';
import type { Digest } from '../../src/oci/digest.js';
import { RegistryClient } from '../../src/registry/client.js';
import { headManifest } from '../../src/registry/manifests.js';
import { listTags } from '../../src/registry/tags.js';
import { parseImageName } from '../../src/transports/index.js';
import { chooseTags } from '../../src/copy/sync.js';
import { syncFromLayout } from '../../src/copy/sync-layout.js';
import { OciLayout } from '../../src/oci/layout.js';
import { encodeManifest, type ImageManifest } from '../../src/oci/manifest.js';
import { parseReference } from '../../src/oci/reference.js';
import { generateKeyPair, loadPrivateKey } from '../../src/sign/keys.js';
import { signImage } from '../../src/sign/sign.js';
import { DockerSource } from '../../src/transports/docker.js';
import { makeIndex, makeRandomImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';

const temps = new TempDirs();
let src: TestRegistry;
let dst: TestRegistry;
let proxy: FaultProxy;
let srcProxy: FaultProxy;
const savedEnv: Record<string, string | undefined> = {};
const clients: RegistryClient[] = [];

function client(host: string): RegistryClient {
  const c = new RegistryClient({ registry: host });
  clients.push(c);
  return c;
}

async function push(ociRef: string, dest: string): Promise<Digest> {
  return (await copyReference(parseImageName(ociRef), parseImageName(dest), { all: true })).digest;
}

beforeAll(async () => {
  const envDir = await temps.make('tagsets-env');
  await writeFile(join(envDir, 'auth.json'), '{"auths":{}}');
  for (const [k, v] of Object.entries({
    REGISTRY_AUTH_FILE: join(envDir, 'auth.json'),
    XDG_RUNTIME_DIR: envDir,
    XDG_CONFIG_HOME: envDir,
    DOCKER_CONFIG: envDir,
  })) {
    savedEnv[k] = process.env[k];
    process.env[k] = v;
  }
  [src, dst] = await Promise.all([startRegistry({ name: 'tagsets-src' }), startRegistry({ name: 'tagsets-dst' })]);
  proxy = await startFaultProxy(dst.url);
  srcProxy = await startFaultProxy(src.url);
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await proxy?.stop();
  await srcProxy?.stop();
  await Promise.all([src?.stop(), dst?.stop()]);
  await temps.cleanup();
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

const spec = (repository: string, tags: string[] = []) => ({ registry: src.host, repository, tags });

describe('sync: tags that share a digest', () => {
  const TAGS = ['latest', '1', '1.2', '1.2.3', 'stable', 'prod', 'a', 'b', 'c'];

  it('nine tags of one image (an index) sync at default parallelism: one push of each manifest, the rest tagged', async () => {
    const idx = await makeIndex(await temps.make('shared-idx'), 'x', ['linux/amd64', 'linux/arm64/v8'], { layers: 2, layerSize: 4096 });
    for (const tag of TAGS) await push(idx.ociRef, `docker://${src.host}/tags/app:${tag}`);
    proxy.clearHits();
    // Through the proxy: every request the sync makes to the destination is recorded.
    const report: SyncReport = await sync([spec('tags/app')], { kind: 'registry', registry: proxy.host, prefix: 'x' });
    expect(report.failed, JSON.stringify(report.items.filter((i) => i.error))).toBe(0);
    expect(report.copied).toBe(TAGS.length);
    const digests = await Promise.all(TAGS.map(async (t) => (await headManifest(client(dst.host), 'x/tags/app', t))?.digest));
    expect(new Set(digests)).toEqual(new Set([idx.descriptor.digest]));
    // Each platform manifest is PUT once (by digest); the index once per tag (its tag).
    const puts = proxy.hits(/\/manifests\//).filter((h) => h.method === 'PUT');
    const byDigest = puts.filter((h) => /\/manifests\/sha256:/.test(h.path));
    expect(byDigest).toHaveLength(2);
    expect(puts).toHaveLength(2 + TAGS.length);
    // Blobs: every blob uploaded at most once.
    const uploads = proxy.hits(/\/blobs\/uploads\//).filter((h) => h.method === 'PUT');
    expect(uploads.length).toBeLessThanOrEqual(2 * 3);
  });

  it('the same nine tags go through an OCI layout and back (layout import at parallelism 16) without a failure', async () => {
    const idx = await makeIndex(await temps.make('shared-idx2'), 'x', ['linux/amd64', 'linux/arm64/v8'], { layers: 2, layerSize: 4096 });
    for (const tag of TAGS) await push(idx.ociRef, `docker://${src.host}/tags/layoutapp:${tag}`);
    const dir = await temps.make('shared-layout');
    const out = await sync([spec('tags/layoutapp')], { kind: 'layout', dir, naming: 'last' });
    expect(out.failed, JSON.stringify(out.items.filter((i) => i.error))).toBe(0);
    for (let run = 0; run < 3; run++) {
      const back = await syncFromLayout(
        join(dir, 'layoutapp'),
        { tags: [] },
        { registry: dst.host, repository: `back${run}/app`, context: {} },
        { parallelImages: 16 },
      );
      expect(back.failed, JSON.stringify(back.items.filter((i) => i.error))).toBe(0);
      expect(back.copied).toBe(TAGS.length);
    }
  });

  it('nine tags of a single-platform image sync, repeatedly, without a failure', async () => {
    const img = await makeRandomImage({ layers: 3, layerSize: 8192, layoutDir: await temps.make('shared-img'), ref: 'x' });
    for (const tag of TAGS) await push(img.ociRef, `docker://${src.host}/tags/single:${tag}`);
    for (let run = 0; run < 3; run++) {
      const report = await sync([spec('tags/single')], { kind: 'registry', registry: dst.host, prefix: `run${run}` });
      expect(report.failed, JSON.stringify(report.items.filter((i) => i.error))).toBe(0);
      expect((await listTags(client(dst.host), `run${run}/tags/single`)).sort()).toEqual([...TAGS].sort());
    }
  });
});

/** The image `img` again with another config `created` (undefined: none), tagged `ref` in its layout. */
async function withCreated(img: FixtureImage, ref: string, created: string | undefined): Promise<string> {
  const layout = await OciLayout.open(img.layoutDir);
  const config = { ...img.config, created };
  if (created === undefined) delete config.created;
  const bytes = Buffer.from(JSON.stringify(config));
  const digest = await layout.writeBlobBytes(bytes);
  const doc = JSON.parse(img.manifest.bytes.toString()) as ImageManifest;
  const manifest = encodeManifest({ ...doc, config: { ...doc.config, digest, size: bytes.length } });
  await layout.writeBlobBytes(manifest.bytes, manifest.digest);
  await layout.setRef({ mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.length }, ref);
  return `oci:${img.layoutDir}:${ref}`;
}

describe('sync: newest without semver is by creation time', () => {
  it('keeps the N tags whose images were created last, whatever their names; a re-selection HEADs only', async () => {
    const base = await makeRandomImage({ layers: 1, layerSize: 1024, layoutDir: await temps.make('created'), ref: 'base' });
    const created: Record<string, string | undefined> = {
      alpha: '2024-01-05T00:00:00Z',
      zeta: '2024-03-01T00:00:00Z',
      'v9.0.0': '2023-01-01T00:00:00Z',
      mid: '2024-02-01T00:00:00Z',
      undated: undefined,
    };
    for (const [tag, when] of Object.entries(created)) await push(await withCreated(base, tag, when), `docker://${src.host}/dated/app:${tag}`);
    const report = await sync([{ ...spec('dated/app'), newest: 2 }], { kind: 'registry', registry: dst.host, prefix: 'n' });
    expect(report.items.map((i) => i.tag).sort()).toEqual(['mid', 'zeta']);
    expect((await listTags(client(dst.host), 'n/dated/app')).sort()).toEqual(['mid', 'zeta']);

    // Through a proxy that counts: a second selection of the same images reads no manifest or config.
    const c = client(srcProxy.host);
    const open = async (tag: string) => new DockerSource({ registry: srcProxy.host, repository: 'dated/app', tag }, c, false);
    srcProxy.clearHits();
    const tags = Object.keys(created);
    expect(await chooseTags({ ...spec('dated/app'), newest: 3 }, tags, open)).toEqual(['zeta', 'mid', 'alpha']);
    const gets = srcProxy.hits().filter((h) => h.method === 'GET' && !/\/v2\/$/.test(h.path));
    expect(gets.map((h) => h.path)).toEqual([]);
    expect(srcProxy.hits().filter((h) => h.method === 'HEAD')).toHaveLength(tags.length);
    // The undated image comes after every dated one.
    expect(await chooseTags({ ...spec('dated/app'), newest: 5 }, tags, open)).toEqual(['zeta', 'mid', 'alpha', 'v9.0.0', 'undated']);
  });

  it('with semver, newest still ranks by version', async () => {
    const report = await sync([{ ...spec('dated/app'), semver: '*', newest: 1 }], { kind: 'registry', registry: dst.host, prefix: 'sv' });
    expect(report.items.map((i) => i.tag)).toEqual(['v9.0.0']);
  });
});

describe('sync: cosign attachment tags are not images', () => {
  it('a sync of every tag lists only images; the signature travels with its image', async () => {
    const img = await makeRandomImage({ layers: 1, layerSize: 1024, layoutDir: await temps.make('signed'), ref: 'x' });
    await push(img.ociRef, `docker://${src.host}/signed/app:1`);
    const keyDir = await temps.make('keys');
    const pair = generateKeyPair('pw');
    await writeFile(join(keyDir, 'k.key'), pair.privatePem);
    const signed = await signImage(parseReference(`${src.host}/signed/app:1`), await loadPrivateKey(join(keyDir, 'k.key'), 'pw'));
    const sigTag = `sha256-${signed.digest.slice('sha256:'.length)}.sig`;
    expect((await listTags(client(src.host), 'signed/app')).sort()).toEqual(['1', sigTag]);
    const report = await sync([spec('signed/app')], { kind: 'registry', registry: dst.host, prefix: 's' });
    expect(report.items.map((i) => i.tag)).toEqual(['1']);
    expect(report.failed).toBe(0);
    expect((await listTags(client(dst.host), 's/signed/app')).sort()).toEqual(['1', sigTag]);
  });
});

describe('sync: a platform filter keeps skip-unchanged', () => {
  it('a re-sync of a platform subset HEADs the source, reads the destination only, and writes nothing', async () => {
    const idx = await makeIndex(await temps.make('subset'), 'x', ['linux/amd64', 'linux/arm64/v8', 'linux/s390x'], { layers: 1, layerSize: 2048 });
    await push(idx.ociRef, `docker://${src.host}/multi/app:1`);
    await push(idx.ociRef, `docker://${src.host}/multi/app:2`);
    const srcSpec = { registry: srcProxy.host, repository: 'multi/app', tags: ['1', '2'] };
    const target = { kind: 'registry' as const, registry: proxy.host, prefix: 'p' };
    for (const platforms of [['linux/amd64'], ['linux/arm64/v8', 'linux/amd64']]) {
      const opts = {
        platforms: platforms.map((p) => ({ os: 'linux', architecture: p.split('/')[1]!, ...(p.split('/')[2] ? { variant: p.split('/')[2] } : {}) })),
      };
      const first = await sync([srcSpec], target, opts);
      expect(first.copied, JSON.stringify(first.items)).toBe(2);
      srcProxy.clearHits();
      proxy.clearHits();
      const again = await sync([srcSpec], target, opts);
      expect(again.items.map((i) => i.action)).toEqual(['skipped', 'skipped']);
      expect(srcProxy.hits().filter((h) => h.method !== 'HEAD' && !/\/v2\/$/.test(h.path))).toEqual([]);
      expect(proxy.hits().filter((h) => h.method !== 'HEAD' && h.method !== 'GET')).toEqual([]);
      expect(proxy.hits().filter((h) => /\/blobs\//.test(h.path))).toEqual([]);
    }
    // Another platform set is a change: copied again.
    const other = await sync([srcSpec], target, { platforms: [{ os: 'linux', architecture: 's390x' }] });
    expect(other.copied).toBe(2);
    // A changed source index is a change too.
    const idx2 = await makeIndex(await temps.make('subset2'), 'x', ['linux/amd64', 'linux/s390x'], { layers: 1, layerSize: 2048 });
    await push(idx2.ociRef, `docker://${src.host}/multi/app:1`);
    const changed = await sync([srcSpec], target, { platforms: [{ os: 'linux', architecture: 's390x' }] });
    expect(changed.items.map((i) => `${i.tag}:${i.action}`).sort()).toEqual(['1:copied', '2:skipped']);
  });
});

describe('sync: cross-repository reuse at the destination', () => {
  it('two repositories sharing 7 layers: the second mounts them from the first at the destination (9 source GETs, 7 mounts)', async () => {
    const base = await makeRandomImage({ layers: 7, layerSize: 8192, layoutDir: await temps.make('shared-layers'), ref: 'base' });
    await push(await withCreated(base, 'a', '2024-01-01T00:00:00Z'), `docker://${src.host}/share/a:1`);
    await push(await withCreated(base, 'b', '2024-02-01T00:00:00Z'), `docker://${src.host}/share/b:1`);
    srcProxy.clearHits();
    proxy.clearHits();
    const report = await sync(
      [
        { registry: srcProxy.host, repository: 'share/a', tags: [] },
        { registry: srcProxy.host, repository: 'share/b', tags: [] },
      ],
      { kind: 'registry', registry: proxy.host, prefix: 'm' },
    );
    expect(report.copied).toBe(2);
    const gets = srcProxy.hits(/\/blobs\/sha256:/).filter((h) => h.method === 'GET');
    const mounts = proxy.hits(/\/blobs\/uploads\/\?mount=/).filter((h) => h.method === 'POST');
    // 7 shared layers once, and each image's own config.
    expect(gets).toHaveLength(9);
    expect(mounts.map((h) => h.status)).toEqual(Array(7).fill(201));
    expect(mounts.every((h) => h.path.includes('from=m%2Fshare%2Fa'))).toBe(true);

    // Hostile neighbour: another sync (another mirror, another tenant's credentials) never learns
    // where this one put its blobs: it mounts nothing from m/share/a, it uploads.
    proxy.clearHits();
    const other = await sync([{ registry: srcProxy.host, repository: 'share/b', tags: [] }], { kind: 'registry', registry: proxy.host, prefix: 'tenant2' });
    expect(other.copied).toBe(1);
    expect(proxy.hits(/\/blobs\/uploads\/\?mount=/)).toEqual([]);
  });
});
