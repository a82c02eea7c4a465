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
import { controllerToken, createMirror, getMirror, metricValue, ok, patchMirror, ready, scrape, waitFor } from './helpers.js';

const NS = 'le';
const SYSTEM_NS = 'stevedore-system';
const LEASE = 'le-test';
const temps = new TempDirs();
let cp: ControlPlane;
let reg: TestRegistry;
let token: string;
const running: { stop: AbortController; done: Promise<void>; manager: Manager }[] = [];

function startInstance(identity: string) {
  const manager = createControllerManager({
    kubeConfig: cp.kubeConfigForToken(token),
    namespace: NS,
    metricsAddr: '127.0.0.1:0',
    leaderElection: { namespace: SYSTEM_NS, name: LEASE, identity },
    processMetrics: false,
    log: rootLogger.child({ test: 'leader', identity }, { level: 'error' }),
  });
  const stop = new AbortController();
  const inst = { stop, manager, done: manager.start().then(() => manager.run(stop.signal)) };
  running.push(inst);
  return inst;
}

const successes = async (m: Manager) => metricValue(await scrape(m.healthAddress!), 'stevedore_controller_reconcile_total', 'result="success"');

beforeAll(async () => {
  [cp, reg] = await Promise.all([startControlPlane(), startRegistry({ name: 'le-src' })]);
  await cp.installCRDs();
  await cp.createNamespace(NS);
  const img = await makeRandomImage({ layers: 1, layerSize: 16 * 1024, layoutDir: await temps.make('le-img'), ref: 'v1' });
  await copyReference(parseImageName(img.ociRef), parseImageName(`docker://${reg.host}/src/app:v1`));
  token = await controllerToken(cp, SYSTEM_NS, 'le-controller');
});

afterAll(async () => {
  for (const r of running) r.stop.abort();
  await Promise.all(running.map((r) => r.done));
  await Promise.all([cp?.stop(), reg?.stop()]);
  await temps.cleanup();
});

describe('leader election on a Lease', () => {
  it('only the leader reconciles; a standby takes over within 20 s after the leader stops', async () => {
    const one = startInstance('one');
    await waitFor(
      'one leads',
      async () => one.manager.isLeader,
      (x) => x,
      10_000,
    );
    const two = startInstance('two');
    await two.manager.start();

    const created = await createMirror(cp, NS, 'app', {
      source: { registry: { repository: `${reg.host}/src/app`, insecure: true } },
      destination: { registry: { repository: `${reg.host}/copy/src/app`, insecure: true } },
    });
    await waitFor(
      'Ready',
      () => getMirror(cp, NS, 'app'),
      (m) => m?.status?.observedGeneration === created.metadata.generation && ready(m)?.status === 'True',
    );
    expect(two.manager.isLeader).toBe(false);
    expect(await successes(one.manager)).toBeGreaterThan(0);
    expect(await successes(two.manager)).toBe(0);
    const lease = (await ok(cp, 'GET', `/apis/coordination.k8s.io/v1/namespaces/${SYSTEM_NS}/leases/${LEASE}`)) as { spec: { holderIdentity: string } };
    expect(lease.spec.holderIdentity).toBe('one');

    const stoppedAt = Date.now();
    one.stop.abort();
    await one.done;
    await waitFor(
      'two leads',
      async () => two.manager.isLeader,
      (x) => x,
      20_000,
    );
    expect(Date.now() - stoppedAt).toBeLessThan(20_000);

    const patched = await patchMirror(cp, NS, 'app', { spec: { tags: { list: ['v1'] } } });
    await waitFor(
      'reconciled by two',
      () => getMirror(cp, NS, 'app'),
      (m) => m?.status?.observedGeneration === patched.metadata.generation && ready(m)?.status === 'True',
    );
    expect(await successes(two.manager)).toBeGreaterThan(0);
    two.stop.abort();
    await two.done;
  });

  it('takes over a lease whose holder died without releasing it once the lease duration has passed', async () => {
    const path = `/apis/coordination.k8s.io/v1/namespaces/${SYSTEM_NS}/leases/${LEASE}`;
    const lease = (await ok(cp, 'GET', path)) as { spec: Record<string, unknown> };
    const now = new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
    await ok(cp, 'PUT', path, { ...lease, spec: { ...lease.spec, holderIdentity: 'crashed', leaseDurationSeconds: 15, renewTime: now } });
    const started = Date.now();
    const three = startInstance('three');
    await new Promise((r) => setTimeout(r, 5_000));
    expect(three.manager.isLeader).toBe(false);
    await waitFor(
      'three leads',
      async () => three.manager.isLeader,
      (x) => x,
      20_000,
    );
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(14_000);
    expect(took).toBeLessThan(20_000);
  });
});
