// The node agent's launch writes status.imageDigest with phase Running; that status write is
// guarded by the run's resourceVersion (the controller writes status too), so it can lose a
// conflict. Seen in CI: it lost, and by the retry the quick container had already exited, so the
// retry went straight to the attempt's end. That end must still record the digest the container
// ran (from its record): a Succeeded run without imageDigest says nothing of what ran.
// A real agent (createAgent, in this process) on a real kube-apiserver pulls busybox from a real
// registry and starts it with runc; its launch is the real startDetached, wrapped to wait until the
// container has exited and then change the run (an annotation, as the controller's write would
// bump its resourceVersion), so the launch's status write conflicts for certain.
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAgent } from '../../src/agent/agent.js';
import type { LaunchContainer } from '../../src/agent/reconciler.js';
import { copyReference } from '../../src/copy/copy.js';
import { API_VERSION, GROUP, VERSION } from '../../src/k8s/api/common.js';
import type { ContainerRun } from '../../src/k8s/api/containerrun.js';
import { containerState } from '../../src/runtime/lifecycle/index.js';
import { startDetached } from '../../src/runtime/lifecycle/monitor.js';
import { listContainers } from '../../src/runtime/containers.js';
import { ociRuntime } from '../../src/runtime/oci-runtime.js';
import { ImageStore } from '../../src/runtime/store/index.js';
import { parseImageName } from '../../src/transports/index.js';
import { ok, waitFor } from '../controllers/helpers.js';
import { makeBusyboxImage } from '../../hack/lib/harness/images.js';
import { startControlPlane, type ControlPlane } from '../../hack/lib/harness/controlplane.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';

const TS_RESOLVE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'hack', 'lib', 'ts-resolve.ts');
const NS = 'runs-race';
const SYSTEM_NS = 'stevedore-system';
const NODE = 'node-race';
const RUN = 'quick';

const temps = new TempDirs();
const logLines: string[] = [];
let cp: ControlPlane;
let reg: TestRegistry;
let image: string;
let imageDigest: string;
let storeRoot: string;
let stop: AbortController | undefined;
let running: Promise<void> | undefined;
/** What the launch wrapper did: containers it started, and changes it made to their runs. */
const launched: string[] = [];
let bumps = 0;

const runsPath = (name?: string) => `/apis/${GROUP}/${VERSION}/namespaces/${NS}/containerruns${name ? `/${name}` : ''}`;

async function getRun(name: string): Promise<ContainerRun | undefined> {
  const res = await cp.request('GET', runsPath(name));
  if (res.status === 404) return undefined;
  if (res.status >= 300) throw new Error(`GET ${name}: ${res.status} ${res.body}`);
  return res.json as ContainerRun;
}

/** The agent's log lines (pino JSON) about one run's key with the given message. */
const agentLines = (msg: string) =>
  logLines.map((l) => JSON.parse(l) as { msg: string; key?: string; err?: string }).filter((l) => l.msg === msg && l.key === `${NS}/${RUN}`);

/**
 * The real detached start; then, once the container has exited, the run is changed behind the
 * agent's back: the agent read it before the launch, so its launch status write now conflicts.
 */
const racingLaunch: LaunchContainer = async (store, options) => {
  const started = await startDetached(store, options);
  launched.push(started.id);
  if (started.error) return started;
  await waitFor(
    'the container to exit',
    () => containerState(store, started.id),
    (st) => st.state === 'exited',
    30_000,
  );
  await ok(
    cp,
    'PATCH',
    runsPath(RUN),
    { metadata: { annotations: { 'test.stevedore.dev/changed-during-launch': String(++bumps) } } },
    'application/merge-patch+json',
  );
  return started;
};

beforeAll(async () => {
  [cp, reg] = await Promise.all([startControlPlane(), startRegistry({ name: 'agent-race' })]);
  await cp.installCRDs();
  await cp.createNamespace(NS);
  await cp.createNamespace(SYSTEM_NS);
  const fixture = await makeBusyboxImage(await temps.make('busybox'), 'latest');
  image = `${reg.host}/tools/busybox:1`;
  await copyReference(parseImageName(fixture.ociRef), parseImageName(`docker://${image}`));
  imageDigest = fixture.descriptor.digest;
  // Under temp dirs (/tmp, o+x): reachable by the runs' user-namespace ids, as the agent requires.
  storeRoot = await temps.make('race-store');
  // The container monitor startDetached spawns runs monitor-main.ts from these sources: it needs
  // the hook that maps the sources' `.js` imports to `.ts` (vitest's own loader is not inherited).
  // startDetached passes this process's --import flags on to it; this test file has its own process.
  process.execArgv.push('--import', TS_RESOLVE);
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line) logLines.push(line);
      cb();
    },
  });
  const agent = await createAgent({
    kubeConfig: cp.kubeConfig,
    nodeName: NODE,
    leaseNamespace: SYSTEM_NS,
    namespace: NS,
    readNodeLabels: false,
    store: await ImageStore.open(storeRoot),
    launch: racingLaunch,
    stopGraceSeconds: 1,
    restartBackoff: { baseMs: 300, maxMs: 300 },
    pollMs: 250,
    queue: { backoff: { baseMs: 200, maxMs: 1_000, jitter: 0.1 } },
    processMetrics: false,
    log: pino({ level: 'info' }, sink),
  });
  stop = new AbortController();
  running = agent.run(stop.signal);
}, 120_000);

afterAll(async () => {
  stop?.abort();
  await running;
  // Nothing this suite started may outlive it: kill containers still running in the store.
  if (storeRoot) {
    const store = await ImageStore.open(storeRoot);
    for (const c of await listContainers(store)) {
      if (c.status === 'running')
        await ociRuntime(c.runtime, c.stateRoot ? { stateRoot: c.stateRoot } : {})
          .kill(c.id, 'SIGKILL', { all: true })
          .catch(() => undefined);
    }
  }
  await Promise.all([cp?.stop(), reg?.stop()]);
  await temps.cleanup();
}, 60_000);

describe('node agent: the launch status write lost to a conflict', () => {
  it('a quick run whose launch status write conflicted and whose container then exited ends Succeeded with its imageDigest', async () => {
    // Pinned to the agent's node (spec.nodeName): no controller is needed to bind it.
    await ok(cp, 'POST', runsPath(), {
      apiVersion: API_VERSION,
      kind: 'ContainerRun',
      metadata: { name: RUN },
      spec: { image, command: ['true'], nodeName: NODE },
    });
    let run: ContainerRun | undefined;
    try {
      run = await waitFor(
        'the run to end',
        () => getRun(RUN),
        (r) => ['Succeeded', 'Failed'].includes(r?.status?.phase ?? ''),
        60_000,
      );
    } catch (err) {
      console.log(logLines.slice(-40).join('\n'));
      throw err;
    }
    // The race happened: one container, started and exited before the launch's status write,
    // which then conflicted (the reconcile failed and was retried).
    expect(launched).toHaveLength(1);
    expect(bumps).toBe(1);
    const failed = agentLines('reconcile failed');
    expect(failed.length, logLines.join('\n')).toBeGreaterThanOrEqual(1);
    expect(failed[0]!.err).toContain('the object has been modified');
    expect(logLines.filter((l) => l.includes('"msg":"container started"'))).toHaveLength(1);

    // The retry found the container exited and recorded the attempt's end, digest included.
    expect(run!.status, logLines.slice(-40).join('\n')).toMatchObject({
      phase: 'Succeeded',
      reason: 'Completed',
      exitCode: 0,
      nodeName: NODE,
      imageDigest,
    });
    expect(run!.metadata.annotations?.['test.stevedore.dev/changed-during-launch']).toBe('1');
  }, 90_000);
});
