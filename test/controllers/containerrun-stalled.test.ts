// A ContainerRun whose image reference no agent could ever pull stalls in the controller, through the
// one error mapping of the reconcile skeleton (k8s/runtime/reconcile-errors.ts): the engine's
// InvalidInputError is not retryable, so the run is Failed, Stalled=True with the engine code as
// reason, never bound to a node, and not retried. A live agent Lease is there, so a run that could
// succeed is bound (the control): the stalled one was not left unbound for want of a node. The run
// is created by a tenant bound to a namespaced Role, on a real kube-apiserver.
// The node agent judges what it cannot start through the same mapping: a run pinned to its node
// (spec.nodeName, which the controller does not schedule) with such an image is Failed and
// Stalled=True INVALID_INPUT by a real `stevedore agent`, at once: not pulled, backed off and
// restarted until BackoffLimitExceeded.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createControllerManager } from '../../src/controllers/setup.js';
import { API_VERSION, GROUP, VERSION } from '../../src/k8s/api/common.js';
import type { ContainerRun } from '../../src/k8s/api/containerrun.js';
import type { Manager } from '../../src/k8s/runtime/manager.js';
import { ensureBuilt } from '../cli/stevedore.js';
import { startControlPlane, type ControlPlane } from '../../hack/lib/harness/controlplane.js';
import type { ManagedProcess } from '../../hack/lib/harness/procs.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { tenantRequest, tenantSetup } from '../tenancy/tenant.js';
import { startAgentProcess } from './agent-process.js';
import { controllerToken, ok, waitFor } from './helpers.js';

const NS = 'runs-stall';
const SYSTEM_NS = 'stevedore-system';
const NODE = 'node-s';
let cp: ControlPlane;
let manager: Manager;
let stop: AbortController;
let running: Promise<void>;
let token: string;
let agent: ManagedProcess | undefined;
const temps = new TempDirs();
const logLines: string[] = [];

const runsPath = (name?: string) => `/apis/${GROUP}/${VERSION}/namespaces/${NS}/containerruns${name ? `/${name}` : ''}`;
const cond = (r: ContainerRun | undefined, type: string) => r?.status?.conditions?.find((c) => c.type === type);
const getRun = (name: string) => async () => (await tenantRequest(cp, token, 'GET', runsPath(name))).json as ContainerRun;
/** Reconcile attempts the controller logged for one key (each failed or stalled reconcile logs a line). */
const attempts = (key: string) => logLines.filter((l) => l.includes(`"key":"${key}"`)).length;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const microTime = () => new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

async function createRun(name: string, image: string, more: Partial<ContainerRun['spec']> = {}): Promise<ContainerRun> {
  const res = await tenantRequest(cp, token, 'POST', runsPath(), {
    apiVersion: API_VERSION,
    kind: 'ContainerRun',
    metadata: { name },
    spec: { image, command: ['true'], ...more },
  });
  if (res.status !== 201) throw new Error(`create ContainerRun ${name}: ${res.status} ${res.body}`);
  return res.json as ContainerRun;
}

beforeAll(async () => {
  cp = await startControlPlane();
  await cp.installCRDs();
  await cp.createNamespace(NS);
  await cp.createNamespace(SYSTEM_NS);
  token = await tenantSetup(cp, NS, 'tenant');
  // A live node agent, as far as the controller can tell: its heartbeat Lease (no agent process
  // runs, so a bound run stays Pending; binding is all the control needs to show).
  await ok(cp, 'POST', `/apis/coordination.k8s.io/v1/namespaces/${SYSTEM_NS}/leases`, {
    metadata: { name: `stevedore-agent-${NODE}`, labels: { 'stevedore.dev/agent': 'true', 'stevedore.dev/node': NODE } },
    spec: { holderIdentity: NODE, leaseDurationSeconds: 3600, renewTime: microTime() },
  });
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logLines.push(String(chunk));
      cb();
    },
  });
  manager = createControllerManager({
    kubeConfig: cp.kubeConfigForToken(await controllerToken(cp, SYSTEM_NS, 'stevedore-controller', [NS])),
    namespace: NS,
    leaderElection: { namespace: SYSTEM_NS, name: 'runs-stall-test' },
    containerRun: { agentNamespace: SYSTEM_NS, nodeCheckMs: 200, failoverAfterMs: 2_000, unschedulableRetryMs: 200 },
    queue: { backoff: { baseMs: 100, maxMs: 1_000, jitter: 0.1 } },
    processMetrics: false,
    log: pino({ level: 'info' }, sink),
  });
  stop = new AbortController();
  running = manager.run(stop.signal);
});

afterAll(async () => {
  await agent?.stop();
  stop?.abort();
  await running;
  await cp?.stop();
  await temps.cleanup();
});

describe('ContainerRun: a non-retryable engine error stalls the run', () => {
  it('an image reference that can never be pulled: Failed, Stalled=True INVALID_INPUT, never bound, not retried, one Warning Event', async () => {
    const good = await createRun('good', 'registry.invalid/tools/busybox:1');
    // Uppercase repository components are not a reference (distribution's grammar): no registry has it.
    const bad = await createRun('bad', 'registry.invalid/Tools/BusyBox:1');
    const bound = await waitFor('good bound', getRun('good'), (r) => r?.status?.nodeName === NODE, 15_000);
    expect(bound.status).toMatchObject({ phase: 'Pending', reason: 'Scheduled' });
    expect(good.metadata.uid).toBeTruthy();

    const r = await waitFor('bad stalled', getRun('bad'), (x) => cond(x, 'Stalled')?.status === 'True', 15_000);
    expect(cond(r, 'Stalled')).toMatchObject({ reason: 'INVALID_INPUT', observedGeneration: bad.metadata.generation });
    expect(cond(r, 'Stalled')!.message).toContain('repository names must be lowercase');
    expect(cond(r, 'Ready')).toMatchObject({ status: 'False', reason: 'INVALID_INPUT' });
    expect(cond(r, 'Reconciling')).toBeUndefined();
    expect(r.status).toMatchObject({ phase: 'Failed', reason: 'INVALID_INPUT', observedGeneration: bad.metadata.generation });
    expect(r.status?.message).toContain('registry.invalid/Tools/BusyBox:1');
    expect(r.status?.finishedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(r.status?.nodeName).toBeUndefined();
    expect(r.metadata.finalizers).toContain('stevedore.dev/containerrun');

    // Not retried: several node-check and back-off intervals later, nothing was written and no
    // further reconcile failed (a retried error would log an attempt per back-off, 100 ms to 1 s).
    const logged = attempts(`${NS}/bad`);
    expect(logged).toBeGreaterThanOrEqual(1);
    await sleep(2_500);
    const later = await getRun('bad')();
    expect(later.metadata.resourceVersion).toBe(r.metadata.resourceVersion);
    expect(attempts(`${NS}/bad`)).toBe(logged);

    // One Warning Event, with the engine code as reason, as the tenant sees it.
    const ev = await tenantRequest(cp, token, 'GET', `/apis/events.k8s.io/v1/namespaces/${NS}/events`);
    expect(ev.status).toBe(200);
    const forBad = (ev.json as { items: Array<{ regarding: { name: string }; type: string; reason: string; action: string }> }).items.filter(
      (e) => e.regarding.name === 'bad',
    );
    expect(forBad.map((e) => [e.type, e.reason, e.action])).toEqual([['Warning', 'INVALID_INPUT', 'Schedule']]);

    // Deleting it needs no agent: it was never bound.
    const del = await tenantRequest(cp, token, 'DELETE', runsPath('bad'));
    expect(del.status).toBeLessThan(300);
    await waitFor(
      'bad gone',
      () => tenantRequest(cp, token, 'GET', runsPath('bad')).then((x) => x.status),
      (s) => s === 404,
      10_000,
    );
  }, 40_000);
});

describe('ContainerRun agent: a non-retryable engine error stalls the run', () => {
  const AGENT_NODE = 'node-agent';
  let agentLog: string;

  beforeAll(async () => {
    await ensureBuilt();
    const dir = await temps.make('stall-agent');
    const kubeconfig = join(dir, 'agent.kubeconfig');
    await writeFile(kubeconfig, cp.kubeConfig.exportConfig());
    agentLog = join(dir, 'agent.log');
    agent = await startAgentProcess({
      nodeName: AGENT_NODE,
      kubeconfig,
      leaseNamespace: SYSTEM_NS,
      namespace: NS,
      root: await temps.make('stall-store'),
      log: agentLog,
    });
    // Bound runs of a node whose agent has not announced itself yet are failed over: wait for its Lease.
    await waitFor(
      'agent Lease',
      () => cp.request('GET', `/apis/coordination.k8s.io/v1/namespaces/${SYSTEM_NS}/leases`).then((res) => res.body),
      (body) => body.includes(`"holderIdentity":"${AGENT_NODE}"`),
      60_000,
    );
  }, 120_000);

  it('a run pinned to the agent’s node with an image reference that can never be pulled: Failed and Stalled=True INVALID_INPUT at once, no retry, no restart', async () => {
    const created = await createRun('pinned-bad', 'registry.invalid/Tools/BusyBox:1', { nodeName: AGENT_NODE, restartPolicy: 'OnFailure', backoffLimit: 3 });
    const r = await waitFor('pinned-bad stalled', getRun('pinned-bad'), (x) => cond(x, 'Stalled')?.status === 'True', 30_000);
    expect(cond(r, 'Stalled')).toMatchObject({ reason: 'INVALID_INPUT', observedGeneration: created.metadata.generation });
    expect(cond(r, 'Ready')).toMatchObject({ status: 'False', reason: 'INVALID_INPUT' });
    expect(r.status).toMatchObject({ phase: 'Failed', reason: 'INVALID_INPUT', nodeName: AGENT_NODE });
    expect(r.status?.message).toContain('repository names must be lowercase');
    expect(r.status?.restartCount ?? 0).toBe(0);
    expect(r.status?.imageDigest).toBeUndefined();

    // Final: once the last writers have recorded the terminal state (the controller may write once
    // more after the agent's Stalled write), nothing more is written for a while, though the agent
    // polls every 250 ms and backs off 300 ms: no retry. A retry loop never settles here.
    let settled = r;
    for (let i = 0; i < 10; i++) {
      await sleep(1_000);
      const now = await getRun('pinned-bad')();
      if (now.metadata.resourceVersion === settled.metadata.resourceVersion) break;
      settled = now;
    }
    await sleep(2_000);
    const last = await getRun('pinned-bad')();
    expect(last.metadata.resourceVersion).toBe(settled.metadata.resourceVersion);
    expect(last.status).toMatchObject({ phase: 'Failed', reason: 'INVALID_INPUT' });
    expect(last.status?.restartCount ?? 0).toBe(0);
    const ev = await tenantRequest(cp, token, 'GET', `/apis/events.k8s.io/v1/namespaces/${NS}/events`);
    const forRun = (ev.json as { items: Array<{ regarding: { name: string }; type: string; reason: string; action: string }> }).items.filter(
      (e) => e.regarding.name === 'pinned-bad' && e.action === 'Run',
    );
    expect(forRun.map((e) => [e.type, e.reason])).toEqual([['Warning', 'INVALID_INPUT']]);

    // Its live agent releases it on deletion.
    await tenantRequest(cp, token, 'DELETE', runsPath('pinned-bad'));
    await waitFor(
      'pinned-bad gone',
      () => tenantRequest(cp, token, 'GET', runsPath('pinned-bad')).then((x) => x.status),
      (st) => st === 404,
      15_000,
    );
  }, 60_000);
});
