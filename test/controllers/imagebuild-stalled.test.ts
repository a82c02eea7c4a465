/**
 * An ImageBuild whose input can never succeed stalls through the reconcile skeleton's one error
 * mapping (k8s/runtime/reconcile-errors.ts: an engine error with retryable false → Stalled=True,
 * its code as reason) and is not tried again: not by backoff, and not by a restarted controller
 * (whose first list reconciles every object). Only a new request or a new spec tries again. A
 * build waiting for its push Secret is the control: it is retried, and after the restart too.
 * Real kube-apiserver; objects created by a tenant bound to a namespaced Role; no kubelet (no
 * build runs: the builds here stop before or at their Pod).
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createControllerManager } from '../../src/controllers/setup.js';
import { API_VERSION, GROUP, RECONCILE_REQUESTED_AT_ANNOTATION, VERSION } from '../../src/k8s/api/common.js';
import type { ImageBuild } from '../../src/k8s/api/imagebuild.js';
import { startControlPlane, type ControlPlane } from '../../hack/lib/harness/controlplane.js';
import { tenantRequest, tenantSetup } from '../tenancy/tenant.js';
import { controllerToken, waitFor } from './helpers.js';

const NS = 'builds-stall';
const SYSTEM_NS = 'stevedore-system';
const REGISTRY = '127.0.0.1:5999';
let cp: ControlPlane;
let token: string;
const logLines: string[] = [];
let current: { stop: AbortController; running: Promise<void> } | undefined;

const buildsPath = (name?: string) => `/apis/${GROUP}/${VERSION}/namespaces/${NS}/imagebuilds${name ? `/${name}` : ''}`;
const cond = (o: ImageBuild | undefined, type: string) => o?.status?.conditions?.find((c) => c.type === type);
const get = (name: string) => async () => (await tenantRequest(cp, token, 'GET', buildsPath(name))).json as ImageBuild;
/** Failed or stalled reconciles the controller logged for one key (one line each). */
const attempts = (name: string) => logLines.filter((l) => l.includes(`"key":"${NS}/${name}"`)).length;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function pods(prefix: string): Promise<string[]> {
  const res = await tenantRequest(cp, token, 'GET', `/api/v1/namespaces/${NS}/pods`);
  return (res.json as { items: { metadata: { name: string } }[] }).items.map((p) => p.metadata.name).filter((n) => n.startsWith(prefix));
}
async function create(name: string, spec: ImageBuild['spec']): Promise<ImageBuild> {
  const res = await tenantRequest(cp, token, 'POST', buildsPath(), { apiVersion: API_VERSION, kind: 'ImageBuild', metadata: { name }, spec });
  if (res.status !== 201) throw new Error(`create ${name}: ${res.status} ${res.body}`);
  return res.json as ImageBuild;
}
async function patch(name: string, body: object): Promise<ImageBuild> {
  const res = await tenantRequest(cp, token, 'PATCH', buildsPath(name), body, 'application/merge-patch+json');
  if (res.status !== 200) throw new Error(`patch ${name}: ${res.status} ${res.body}`);
  return res.json as ImageBuild;
}

/** A controller process (stopped first if one runs): its first list reconciles every ImageBuild. */
async function startController(buildPods: { sourcePolicy?: string } = {}): Promise<void> {
  if (current) {
    current.stop.abort();
    await current.running;
  }
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logLines.push(String(chunk));
      cb();
    },
  });
  const manager = createControllerManager({
    kubeConfig: cp.kubeConfigForToken(await controllerToken(cp, SYSTEM_NS, 'stevedore-controller', [NS])),
    namespace: NS,
    queue: { backoff: { baseMs: 100, maxMs: 1_000, jitter: 0.1 } },
    processMetrics: false,
    buildPods: { image: 'stevedore.test/stevedore:dev', ...buildPods },
    log: pino({ level: 'info' }, sink),
  });
  const stop = new AbortController();
  await manager.start();
  current = { stop, running: manager.run(stop.signal) };
}

beforeAll(async () => {
  cp = await startControlPlane();
  await cp.installCRDs();
  await cp.createNamespace(NS);
  token = await tenantSetup(cp, NS, 'tenant');
  await startController();
}, 120_000);

afterAll(async () => {
  current?.stop.abort();
  await current?.running;
  await cp?.stop();
});

describe('ImageBuild: an input that can never succeed', () => {
  it('stalls with the engine code, is not retried (nor by a restarted controller), and a request or a fixed spec tries again', async () => {
    // Uppercase repository components are no reference (distribution's grammar): parseReference throws a non-retryable error.
    const bad = await create('bad-output', { source: { inline: { containerfile: 'FROM scratch\n' } }, output: { image: `${REGISTRY}/Team/App:1` } });
    // The control: a missing push Secret is the build's state, retried with backoff.
    await create('waits', {
      source: { inline: { containerfile: 'FROM scratch\n' } },
      output: { image: `${REGISTRY}/team/waits:1`, pushSecret: { name: 'not-yet' } },
    });

    const b = await waitFor(
      'Stalled',
      get('bad-output'),
      (o) => cond(o, 'Stalled')?.status === 'True' && o.status?.observedGeneration === bad.metadata.generation,
      20_000,
    );
    expect(cond(b, 'Stalled')).toMatchObject({ reason: 'INVALID_INPUT', observedGeneration: bad.metadata.generation });
    expect(cond(b, 'Stalled')!.message).toMatch(/invalid reference/);
    expect(cond(b, 'Ready')).toMatchObject({ status: 'False', reason: 'INVALID_INPUT' });
    expect(cond(b, 'Reconciling')).toBeUndefined();
    expect(b.status?.podName).toBeUndefined();
    await waitFor(
      'control retried',
      async () => attempts('waits'),
      (n) => n >= 3,
      15_000,
    );

    // Not retried: several backoff periods (100 ms doubling to 1 s) later, no attempt and no write.
    // (The stalled attempt's log line comes after the status patch just seen: wait for it first.)
    await waitFor(
      'stalled attempt logged',
      async () => attempts('bad-output'),
      (n) => n >= 1,
      10_000,
    );
    const logged = attempts('bad-output');
    expect(logged).toBe(1);
    await sleep(2_500);
    expect(attempts('bad-output')).toBe(logged);
    expect((await get('bad-output')()).metadata.resourceVersion).toBe(b.metadata.resourceVersion);

    // A restarted controller reconciles every object (the control fails again) but does not start the stalled one again.
    const control = attempts('waits');
    await startController();
    await waitFor(
      'control retried by the new controller',
      async () => attempts('waits'),
      (n) => n >= control + 2,
      15_000,
    );
    await sleep(1_000);
    expect(attempts('bad-output')).toBe(logged);
    expect(await pods('bad-output-')).toEqual([]);

    // A reconcile request tries again (and stalls again, the request marked handled).
    const at = new Date().toISOString();
    await patch('bad-output', { metadata: { annotations: { [RECONCILE_REQUESTED_AT_ANNOTATION]: at } } });
    const again = await waitFor('request handled', get('bad-output'), (o) => o.status?.lastHandledReconcileAt === at, 15_000);
    expect(cond(again, 'Stalled')).toMatchObject({ status: 'True', reason: 'INVALID_INPUT' });
    expect(attempts('bad-output')).toBe(logged + 1);

    // A fixed spec builds: its Pod is created (no kubelet here runs it).
    const fixed = await patch('bad-output', { spec: { output: { image: `${REGISTRY}/team/app:1` } } });
    const building = await waitFor(
      'Building',
      get('bad-output'),
      (o) => o.status?.observedGeneration === fixed.metadata.generation && cond(o, 'Reconciling')?.reason === 'Building',
      15_000,
    );
    expect(cond(building, 'Stalled')).toBeUndefined();
    expect(await pods('bad-output-')).toEqual([building.status!.podName]);
  });
});

describe("ImageBuild: the administrator's source policy", () => {
  it('refuses a script build while a source policy is set (a script picks its images itself): Stalled InvalidSpec, no Pod', async () => {
    await startController({
      sourcePolicy: JSON.stringify({ rules: [{ action: 'DENY', selector: { identifier: 'docker-image://docker.io/*', matchType: 'WILDCARD' } }] }),
    });
    const created = await create('script-under-policy', {
      source: { script: { inline: 'c=$(buildah from docker.io/library/busybox:1.36)\nbuildah commit "$c" "$IMAGE"\n' } },
      output: { image: `${REGISTRY}/team/script:1` },
    });
    const b = await waitFor(
      'Stalled',
      get('script-under-policy'),
      (o) => cond(o, 'Stalled')?.status === 'True' && o.status?.observedGeneration === created.metadata.generation,
      20_000,
    );
    expect(cond(b, 'Stalled')).toMatchObject({ reason: 'InvalidSpec' });
    expect(cond(b, 'Stalled')!.message).toContain('script builds are refused while the administrator’s source policy is set');
    expect(await pods('script-under-policy-')).toEqual([]);
  });
});
