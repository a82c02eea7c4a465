/**
 * ImageMirror against the engine's tag-set rules (issue 16), on a real API server and real
 * registries: newest by creation time, an invalid semver range, prune next to a shared digest, and a
 * sync cancelled by deleting its mirror.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { createControllerManager } from '../../src/controllers/setup.js';
import type { Manager } from '../../src/k8s/runtime/manager.js';
import { OciLayout } from '../../src/oci/layout.js';
import { encodeManifest, type ImageManifest } from '../../src/oci/manifest.js';
import { parseImageName } from '../../src/transports/index.js';
import { rootLogger } from '../../src/util/log.js';
import { makeRandomImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { startControlPlane, type ControlPlane } from '../../hack/lib/harness/controlplane.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { controllerToken, createMirror, getMirror, mirrorsPath, ok, ready, registryDigest, waitFor } from './helpers.js';

const NS = 'selection';
const temps = new TempDirs();
let cp: ControlPlane;
let src: TestRegistry;
let dst: TestRegistry;
let slow: FaultProxy;
let manager: Manager;
let stop: AbortController;
let running: Promise<void>;

async function push(ociRef: string, dest: string): Promise<void> {
  await copyReference(parseImageName(ociRef), parseImageName(dest), { all: true });
}

/** `img` with another config `created`, tagged `ref` in its layout. */
async function withCreated(img: FixtureImage, ref: string, created: string): Promise<string> {
  const layout = await OciLayout.open(img.layoutDir);
  const bytes = Buffer.from(JSON.stringify({ ...img.config, created }));
  const digest = await layout.writeBlobBytes(bytes);
  const doc = JSON.parse(img.manifest.bytes.toString()) as ImageManifest;
  const manifest = encodeManifest({ ...doc, config: { ...doc.config, digest, size: bytes.length } });
  await layout.writeBlobBytes(manifest.bytes, manifest.digest);
  await layout.setRef({ mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.length }, ref);
  return `oci:${img.layoutDir}:${ref}`;
}

beforeAll(async () => {
  [cp, src, dst] = await Promise.all([startControlPlane(), startRegistry({ name: 'sel-src' }), startRegistry({ name: 'sel-dst' })]);
  slow = await startFaultProxy(src.url);
  await cp.installCRDs();
  await cp.createNamespace(NS);
  const base = await makeRandomImage({ layers: 1, layerSize: 4096, layoutDir: await temps.make('base'), ref: 'base' });
  const dates: Record<string, string> = {
    alpha: '2024-01-05T00:00:00Z',
    zeta: '2024-03-01T00:00:00Z',
    mid: '2024-02-01T00:00:00Z',
    old: '2023-06-01T00:00:00Z',
  };
  for (const [tag, when] of Object.entries(dates)) await push(await withCreated(base, tag, when), `docker://${src.host}/dated/app:${tag}`);
  // Prune: 1 and latest share a digest; 2 is another image.
  const one = await makeRandomImage({ layers: 1, layerSize: 2048, layoutDir: await temps.make('one'), ref: 'x' });
  const two = await makeRandomImage({ layers: 1, layerSize: 2048, layoutDir: await temps.make('two'), ref: 'x' });
  for (const tag of ['1', 'latest']) await push(one.ociRef, `docker://${src.host}/prune/app:${tag}`);
  await push(two.ociRef, `docker://${src.host}/prune/app:2`);
  // A 24 MiB image for the cancelled sync.
  const big = await makeRandomImage({ layers: 1, layerSize: 24 * 1024 * 1024, layoutDir: await temps.make('big'), ref: 'x' });
  await push(big.ociRef, `docker://${src.host}/big/app:1`);

  const token = await controllerToken(cp, 'stevedore-system', 'stevedore-controller');
  manager = createControllerManager({
    kubeConfig: cp.kubeConfigForToken(token),
    namespace: NS,
    metricsAddr: '127.0.0.1:0',
    leaderElection: { namespace: 'stevedore-system', name: 'selection-test' },
    queue: { backoff: { baseMs: 200, maxMs: 2_000, jitter: 0.1 } },
    processMetrics: false,
    log: rootLogger.child({ test: 'imagemirror-selection' }, { level: 'error' }),
  });
  stop = new AbortController();
  await manager.start();
  running = manager.run(stop.signal);
}, 120_000);

afterAll(async () => {
  stop?.abort();
  await running;
  await slow?.stop();
  await Promise.all([cp?.stop(), src?.stop(), dst?.stop()]);
  await temps.cleanup();
});

const source = (repo: string, host = src.host) => ({ registry: { repository: `${host}/${repo}`, insecure: true } });
const destination = (repo: string) => ({ registry: { repository: `${dst.host}/${repo}`, insecure: true } });
const get = (name: string) => () => getMirror(cp, NS, name);

describe('ImageMirror tag selection and lifecycle', () => {
  it('tags.newest without semver keeps the images created last (by config created), Ready=True', async () => {
    await createMirror(cp, NS, 'newest', { source: source('dated/app'), destination: destination('n/app'), tags: { newest: 2 } });
    const m = await waitFor('Ready', get('newest'), (x) => ready(x)?.status === 'True' || ready(x)?.status === 'False');
    expect(ready(m)?.reason, ready(m)?.message).toBe('Succeeded');
    expect(m!.status!.tags!.map((t) => t.tag)).toEqual(['mid', 'zeta']);
    expect(await registryDigest(dst.url, 'n/app', 'zeta')).toBeTruthy();
    expect(await registryDigest(dst.url, 'n/app', 'alpha')).toBeUndefined();
  });

  it('an invalid tags.semver is refused: Stalled InvalidSpec naming the field, not Ready=True with 0 tags', async () => {
    await createMirror(cp, NS, 'badsemver', { source: source('dated/app'), destination: destination('b/app'), tags: { semver: 'not a range' } });
    const m = await waitFor('a verdict', get('badsemver'), (x) => ready(x)?.status === 'False' || ready(x)?.status === 'True');
    expect(ready(m)?.status).toBe('False');
    expect(ready(m)?.reason).toBe('InvalidSpec');
    expect(ready(m)?.message).toContain('spec.tags.semver: "not a range" is not a semver range');
    expect(m!.status!.conditions!.find((c) => c.type === 'Stalled')?.status).toBe('True');
  });

  it('prune leaves a tag that shares a kept tag’s digest without calling it a failure (Ready=True, also in dryRun)', async () => {
    await createMirror(cp, NS, 'prune', { source: source('prune/app'), destination: destination('p/app') });
    await waitFor('first sync', get('prune'), (x) => ready(x)?.reason === 'Succeeded');
    for (const dryRun of [true, false]) {
      const name = `prune-${dryRun ? 'dry' : 'real'}`;
      await createMirror(cp, NS, name, { source: source('prune/app'), destination: destination('p/app'), tags: { list: ['1'] }, prune: true, dryRun });
      const m = await waitFor(`${name} verdict`, get(name), (x) => ready(x)?.status === 'True' || ready(x)?.status === 'False');
      expect(ready(m)?.reason, ready(m)?.message).toBe('Succeeded');
      const byTag = Object.fromEntries(m!.status!.tags!.map((t) => [t.tag, t.action]));
      expect(byTag).toEqual({ '1': 'skipped', '2': 'pruned', latest: 'skipped' });
      expect(m!.status!.counts!.selected).toBe(1);
      expect(m!.status!.counts!.failed).toBe(0);
    }
    expect(await registryDigest(dst.url, 'p/app', 'latest')).toBeTruthy();
    expect(await registryDigest(dst.url, 'p/app', '2')).toBeUndefined();
  });

  it('deleting a mirror cancels its running sync: the manifest never lands', async () => {
    // The source's blob answers after 3 s: the sync is surely under way when the delete comes.
    slow.addFault({ method: 'GET', pathRegex: /\/big\/app\/blobs\/sha256:/, kind: 'delay', ms: 3_000, times: Infinity });
    await createMirror(cp, NS, 'cancel', { source: source('big/app', slow.host), destination: destination('c/app') });
    await waitFor(
      'the blob download',
      async () => slow.hits(/\/big\/app\/blobs\//).length,
      (n) => n > 0,
    );
    await ok(cp, 'DELETE', mirrorsPath(NS, 'cancel'));
    await waitFor('gone', get('cancel'), (m) => m === undefined, 10_000);
    // Past the delay, and time to finish had the sync gone on.
    await new Promise((r) => setTimeout(r, 5_000));
    expect(await registryDigest(dst.url, 'c/app', '1')).toBeUndefined();
  });
});
