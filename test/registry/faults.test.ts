/**
 * The copy engine and registry client against a real registry with a fault proxy in front:
 * rate limiting with Retry-After, transient 5xx, a connection dropped mid-blob (resumed by Range),
 * corrupted bytes (refused, nothing tagged), and an interrupted copy that a rerun finishes.
 *
 * The source is always `docker://<proxy>/...` and the destination `docker://<registry>/...`: the
 * same registry behind two host names, so the engine never mounts and every blob really flows
 * through the proxy.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import type { ProgressEvent } from '../../src/copy/progress.js';
import { RegistryClient } from '../../src/registry/client.js';
import { getBlob } from '../../src/registry/blobs.js';
import { headManifest } from '../../src/registry/manifests.js';
import { streamToBuffer } from '../../src/util/streams.js';
import { StevedoreError } from '../../src/util/errors.js';
import { parseImageName } from '../../src/transports/index.js';
import { makeRandomImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { copy, caught } from './helpers.js';

const temps = new TempDirs();
let reg: TestRegistry;
let proxy: FaultProxy;
let client: RegistryClient;

/** Fresh content per test so no blob is already present in a destination repository. */
async function pushFixture(repo: string, opts: { layers: number; layerSize: number }): Promise<FixtureImage> {
  const image = await makeRandomImage({ ...opts, layoutDir: await temps.make(repo.replace(/\//g, '-')) });
  await copyReference(parseImageName(image.ociRef), parseImageName(`docker://${reg.host}/${repo}:v1`));
  return image;
}

beforeAll(async () => {
  reg = await startRegistry({ name: 'reg-faults' });
  proxy = await startFaultProxy(reg.url);
  client = new RegistryClient({ registry: reg.host });
});

afterEach(() => {
  proxy.clearFaults();
  proxy.clearHits();
});

afterAll(async () => {
  await client?.close();
  await proxy?.stop();
  await reg?.stop();
  await temps.cleanup();
});

describe('retries through the fault proxy', () => {
  it('waits out a 429 with Retry-After: 1 on a blob GET, then copies', async () => {
    const image = await pushFixture('rl/src', { layers: 1, layerSize: 64 * 1024 });
    const layer = image.layers[0]!.digest;
    proxy.addFault({ method: 'GET', pathRegex: `/blobs/${layer}`, kind: 'status', status: 429, headers: { 'Retry-After': '1' } });
    const started = Date.now();
    const result = await copy(`docker://${proxy.host}/rl/src:v1`, `docker://${reg.host}/rl/dst:v1`);
    const elapsed = Date.now() - started;
    expect(result.digest).toBe(image.manifest.digest);
    expect(result.blobsCopied).toBe(2);
    expect(
      proxy
        .hits(`/blobs/${layer}`)
        .filter((h) => h.method === 'GET')
        .map((h) => h.status),
    ).toEqual([429, 200]);
    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect((await headManifest(client, 'rl/dst', 'v1'))?.digest).toBe(image.manifest.digest);
  });

  it('a Retry-After beyond the 120 s cap fails at once, saying so, instead of being cut to 120 s', async () => {
    await pushFixture('rl-long/src', { layers: 1, layerSize: 1024 });
    proxy.addFault({ method: 'GET', pathRegex: '/rl-long/src/manifests/', kind: 'status', status: 429, headers: { 'Retry-After': '600' } });
    const started = Date.now();
    const err = await caught(copy(`docker://${proxy.host}/rl-long/src:v1`, `docker://${reg.host}/rl-long/dst:v1`));
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((err as StevedoreError).code).toBe('RETRY_AFTER_TOO_LONG');
    expect((err as Error).message).toMatch(/rl-long\/src\/manifests\/v1: the server asked to retry after 600 s \(Retry-After\), more than the 120 s/);
  });

  it('retries a manifest GET that fails with 500 twice', async () => {
    const image = await pushFixture('five/src', { layers: 1, layerSize: 16 * 1024 });
    proxy.addFault({ method: 'GET', pathRegex: '/manifests/', kind: 'status', status: 500, times: 2 });
    const result = await copy(`docker://${proxy.host}/five/src:v1`, `docker://${reg.host}/five/dst:v1`);
    expect(result.digest).toBe(image.manifest.digest);
    expect(
      proxy
        .hits('/manifests/v1')
        .filter((h) => h.method === 'GET')
        .map((h) => h.status),
    ).toEqual([500, 500, 200]);
  });

  it('resumes a blob whose connection drops mid-way with a Range request', async () => {
    const image = await pushFixture('drop/src', { layers: 1, layerSize: 2 * 1024 * 1024 });
    const layer = image.layers[0]!;
    proxy.addFault({ method: 'GET', pathRegex: `/blobs/${layer.digest}`, kind: 'drop', afterBytes: 700 * 1024 });
    const result = await copy(`docker://${proxy.host}/drop/src:v1`, `docker://${reg.host}/drop/dst:v1`);
    expect(result.digest).toBe(image.manifest.digest);
    const gets = proxy.hits(`/blobs/${layer.digest}`).filter((h) => h.method === 'GET');
    expect(gets[0]!.fault).toBe('drop');
    const ranged = gets.filter((h) => h.headers.range !== undefined);
    expect(ranged.length).toBeGreaterThanOrEqual(1);
    const m = /^bytes=(\d+)-$/.exec(String(ranged[0]!.headers.range));
    expect(m).not.toBeNull();
    // It resumed from where it was, not from 0 (the proxy wrote exactly 700 KiB before the cut).
    expect(Number(m![1])).toBeGreaterThan(0);
    expect(Number(m![1])).toBeLessThanOrEqual(700 * 1024);
    expect(ranged[0]!.status).toBe(206);
    // Only the first (dropped) GET and the ranged ones: the layer was not fetched again from scratch.
    expect(gets.filter((h) => h.headers.range === undefined)).toHaveLength(1);
    expect((await headManifest(client, 'drop/dst', 'v1'))?.digest).toBe(image.manifest.digest);
  });

  it('keeps resuming a link that breaks every 256 KiB, as long as each connection makes progress', async () => {
    const image = await pushFixture('flaky/src', { layers: 1, layerSize: 2 * 1024 * 1024 });
    const layer = image.layers[0]!;
    proxy.addFault({ method: 'GET', pathRegex: `/blobs/${layer.digest}`, kind: 'drop', afterBytes: 256 * 1024, times: Infinity });
    const result = await copy(`docker://${proxy.host}/flaky/src:v1`, `docker://${reg.host}/flaky/dst:v1`);
    expect(result.digest).toBe(image.manifest.digest);
    const gets = proxy.hits(`/blobs/${layer.digest}`).filter((h) => h.method === 'GET');
    // At least ceil(size / 256 KiB) connections, each resuming where the client's consumption
    // stopped: never from 0, always further on, by at most the 256 KiB a connection delivers.
    // (Bytes undici had buffered but not handed over when the socket broke are fetched again.)
    expect(gets.length).toBeGreaterThanOrEqual(Math.ceil(layer.size / (256 * 1024)));
    const starts = gets.slice(1).map((h) => Number(/^bytes=(\d+)-$/.exec(String(h.headers.range))?.[1]));
    expect(starts.every((n) => Number.isInteger(n) && n > 0)).toBe(true);
    const steps = starts.map((n, i) => n - (i === 0 ? 0 : starts[i - 1]!));
    expect(
      steps.every((d) => d > 0 && d <= 256 * 1024),
      JSON.stringify(starts),
    ).toBe(true);
    expect(starts.at(-1)! + 256 * 1024).toBeGreaterThanOrEqual(layer.size);
  });

  it('gives up on a link that makes no progress, with an error naming the source blob', async () => {
    const image = await pushFixture('dead/src', { layers: 1, layerSize: 64 * 1024 });
    const layer = image.layers[0]!;
    proxy.addFault({ method: 'GET', pathRegex: `/blobs/${layer.digest}`, kind: 'drop', afterBytes: 0, times: Infinity });
    const viaProxy = new RegistryClient({ registry: proxy.host });
    try {
      const stream = await getBlob(viaProxy, 'dead/src', layer, { resumes: 2 });
      const err = await caught(streamToBuffer(stream, 1 << 30, 'blob'));
      expect(err.code).toBe('NETWORK');
      expect(err.retryable).toBe(true);
      expect(err.message).toContain(`blob ${layer.digest} from ${proxy.host}/dead/src`);
      // The first GET and two resumes, then no more.
      expect(proxy.hits(`/blobs/${layer.digest}`).filter((h) => h.method === 'GET')).toHaveLength(3);
    } finally {
      await viaProxy.close();
    }
  });

  it('retries a blob upload the destination answers with 429 (a streamed body is resent by the copy)', async () => {
    const image = await pushFixture('up429/src', { layers: 1, layerSize: 64 * 1024 });
    proxy.addFault({ method: 'PUT', pathRegex: '/blobs/uploads/', kind: 'status', status: 429, headers: { 'Retry-After': '0' } });
    const events: ProgressEvent[] = [];
    const result = await copy(`docker://${reg.host}/up429/src:v1`, `docker://${proxy.host}/up429/dst:v1`, { onProgress: (e) => events.push(e) });
    expect(result.digest).toBe(image.manifest.digest);
    expect(events.filter((e) => e.type === 'blob' && e.phase === 'retry')).toHaveLength(1);
    expect((await headManifest(client, 'up429/dst', 'v1'))?.digest).toBe(image.manifest.digest);
  });

  it('retries requests whose connection is reset before any answer', async () => {
    const image = await pushFixture('reset/src', { layers: 1, layerSize: 16 * 1024 });
    proxy.addFault({ method: 'HEAD', pathRegex: '/blobs/', kind: 'reset' });
    proxy.addFault({ method: 'POST', pathRegex: '/blobs/uploads/', kind: 'reset' });
    proxy.addFault({ method: 'PUT', pathRegex: '/manifests/', kind: 'reset' });
    const result = await copy(`docker://${reg.host}/reset/src:v1`, `docker://${proxy.host}/reset/dst:v1`);
    expect(result.digest).toBe(image.manifest.digest);
    expect(
      proxy
        .hits('/manifests/')
        .filter((h) => h.method === 'PUT')
        .map((h) => h.status),
    ).toEqual([0, 201]);
  });
});

describe('integrity', () => {
  it('refuses a corrupted blob with DIGEST_MISMATCH and tags nothing at the destination', async () => {
    const image = await pushFixture('bad/src', { layers: 2, layerSize: 256 * 1024 });
    const layer = image.layers[1]!.digest;
    proxy.addFault({ method: 'GET', pathRegex: `/blobs/${layer}`, kind: 'corrupt', times: Infinity });
    const err = await caught(copy(`docker://${proxy.host}/bad/src:v1`, `docker://${reg.host}/bad/dst:v1`));
    expect(err).toBeInstanceOf(StevedoreError);
    expect(err.code).toBe('DIGEST_MISMATCH');
    expect(err.message).toContain(layer);
    expect(await headManifest(client, 'bad/dst', 'v1')).toBeUndefined();
    // Nor did the corrupt bytes become a blob in the destination repository.
    const res = await client.request({ method: 'HEAD', path: `/v2/bad/dst/blobs/${layer}`, scopes: [], expect: [200], allowStatus: [404] });
    await res.body.dump();
    expect(res.status).toBe(404);
  });

  it('refuses a corrupted manifest with DIGEST_MISMATCH', async () => {
    await pushFixture('badm/src', { layers: 1, layerSize: 4 * 1024 });
    proxy.addFault({ method: 'GET', pathRegex: '/manifests/v1', kind: 'corrupt', times: Infinity });
    const err = await caught(copy(`docker://${proxy.host}/badm/src:v1`, `docker://${reg.host}/badm/dst:v1`));
    expect(err.code).toBe('DIGEST_MISMATCH');
    expect(await headManifest(client, 'badm/dst', 'v1')).toBeUndefined();
  });

  it('an interrupted copy leaves no manifest; a rerun completes and reuses what arrived', async () => {
    const image = await pushFixture('int/src', { layers: 3, layerSize: 128 * 1024 });
    const ac = new AbortController();
    let done = 0;
    const onProgress = (e: ProgressEvent) => {
      if (e.type === 'blob' && e.phase === 'done' && ++done === 1) ac.abort();
    };
    // One blob at a time, so "after the first blob finished" is a definite point.
    await expect(copy(`docker://${proxy.host}/int/src:v1`, `docker://${reg.host}/int/dst:v1`, { jobs: 1, signal: ac.signal, onProgress })).rejects.toThrow();
    expect(done).toBe(1);
    expect(await headManifest(client, 'int/dst', 'v1')).toBeUndefined();
    const again = await copy(`docker://${proxy.host}/int/src:v1`, `docker://${reg.host}/int/dst:v1`);
    expect(again.digest).toBe(image.manifest.digest);
    expect(again.blobsReused).toBeGreaterThanOrEqual(1);
    expect(again.blobsReused + again.blobsCopied).toBe(4);
    expect((await headManifest(client, 'int/dst', 'v1'))?.digest).toBe(image.manifest.digest);
  });
});
