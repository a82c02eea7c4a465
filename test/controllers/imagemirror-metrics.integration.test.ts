/**
 * Per-mirror metrics (issue 16 defect 10, "nothing per mirror to alert on"): the controller's
 * /metrics carries stevedore_imagemirror_* series labelled by namespace and name, counting what
 * each sync did, and drops them when the mirror is deleted. Real API server, real registries.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { createControllerManager } from '../../src/controllers/setup.js';
import type { Manager } from '../../src/k8s/runtime/manager.js';
import { parseImageName } from '../../src/transports/index.js';
import { rootLogger } from '../../src/util/log.js';
import { makeRandomImage } from '../../hack/lib/harness/images.js';
import { startControlPlane, type ControlPlane } from '../../hack/lib/harness/controlplane.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { controllerToken, createMirror, getMirror, mirrorsPath, ok, ready, scrape, waitFor } from './helpers.js';

const NS = 'metrics-mirrors';
const SYSTEM_NS = 'stevedore-system';
const temps = new TempDirs();
let cp: ControlPlane;
let src: TestRegistry;
let dst: TestRegistry;
let manager: Manager;
let stop: AbortController;
let running: Promise<void>;

beforeAll(async () => {
  [cp, src, dst] = await Promise.all([startControlPlane(), startRegistry({ name: 'metrics-src' }), startRegistry({ name: 'metrics-dst' })]);
  await cp.installCRDs();
  await cp.createNamespace(NS);
  for (const [i, tag] of ['1', '2'].entries()) {
    const img = await makeRandomImage({ layers: 1, layerSize: 30_000, seed: `metrics-${i}`, layoutDir: await temps.make(`img-${i}`), ref: tag });
    await copyReference(parseImageName(img.ociRef), parseImageName(`docker://${src.host}/team/app:${tag}`));
  }
  const token = await controllerToken(cp, SYSTEM_NS, 'stevedore-controller', [NS]);
  manager = createControllerManager({
    kubeConfig: cp.kubeConfigForToken(token),
    namespace: NS,
    metricsAddr: '127.0.0.1:0',
    leaderElection: { namespace: SYSTEM_NS, name: 'mirrors-metrics-test' },
    queue: { backoff: { baseMs: 200, maxMs: 2_000, jitter: 0.1 } },
    processMetrics: false,
    log: rootLogger.child({ test: 'imagemirror-metrics' }, { level: 'error' }),
  });
  stop = new AbortController();
  await manager.start();
  running = manager.run(stop.signal);
}, 120_000);

afterAll(async () => {
  stop?.abort();
  await running;
  await Promise.all([cp?.stop(), src?.stop(), dst?.stop()]);
  await temps.cleanup();
});

/** The value of the series `name{...labels}` (labels in any order), or undefined when it is absent. */
function series(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v) && Object.keys(have).length === Object.keys(labels).length) return Number(m[3]);
  }
  return undefined;
}

const mirror = (repo: string, tags?: string[]) => ({
  source: { registry: { repository: `${src.host}/team/app`, insecure: true } },
  destination: { registry: { repository: `${dst.host}/${repo}`, insecure: true } },
  ...(tags ? { tags: { list: tags } } : {}),
});

describe('stevedore_imagemirror_* metrics', () => {
  it('count copies, bytes and failures per mirror, stamp the last success, and go away with the mirror', async () => {
    const before = Date.now() / 1000;
    await createMirror(cp, NS, 'good', mirror('good/app'));
    await createMirror(cp, NS, 'bad', mirror('bad/app', ['1', 'no-such-tag']));
    await waitFor(
      'good synced',
      () => getMirror(cp, NS, 'good'),
      (m) => ready(m)?.reason === 'Succeeded',
    );
    await waitFor(
      'bad synced',
      () => getMirror(cp, NS, 'bad'),
      (m) => ready(m)?.reason === 'PartialFailure',
    );
    const text = await scrape(manager.healthAddress!);
    const good = { namespace: NS, name: 'good' };
    const bad = { namespace: NS, name: 'bad' };
    expect(series(text, 'stevedore_imagemirror_images_copied_total', good)).toBe(2);
    expect(series(text, 'stevedore_imagemirror_failures_total', good)).toBe(0);
    expect(series(text, 'stevedore_imagemirror_bytes_total', good)).toBeGreaterThan(2 * 30_000);
    expect(series(text, 'stevedore_imagemirror_syncs_total', { ...good, result: 'succeeded' })).toBe(1);
    const success = series(text, 'stevedore_imagemirror_last_success_timestamp_seconds', good)!;
    expect(success).toBeGreaterThanOrEqual(Math.floor(before));
    expect(success).toBeLessThanOrEqual(Date.now() / 1000);
    // The failing mirror: its own series, one failed tag, no success stamp to alert on.
    expect(series(text, 'stevedore_imagemirror_images_copied_total', bad)).toBe(1);
    expect(series(text, 'stevedore_imagemirror_failures_total', bad)).toBeGreaterThanOrEqual(1);
    expect(series(text, 'stevedore_imagemirror_syncs_total', { ...bad, result: 'partial' })).toBeGreaterThanOrEqual(1);
    expect(series(text, 'stevedore_imagemirror_last_success_timestamp_seconds', bad)).toBeUndefined();
    expect(series(text, 'stevedore_imagemirror_last_sync_timestamp_seconds', bad)).toBeGreaterThan(0);

    await ok(cp, 'DELETE', mirrorsPath(NS, 'good'));
    await waitFor(
      'good gone',
      () => getMirror(cp, NS, 'good'),
      (m) => m === undefined,
    );
    const after = await scrape(manager.healthAddress!);
    expect(after).not.toMatch(/stevedore_imagemirror_\w+\{[^}]*name="good"/);
    expect(series(after, 'stevedore_imagemirror_last_sync_timestamp_seconds', bad)).toBeGreaterThan(0);
  });
});
