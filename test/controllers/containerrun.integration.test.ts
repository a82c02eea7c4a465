/**
 * ContainerRun end to end on a real kube-apiserver: the controller (in this process) binds runs,
 * and a real node agent (`stevedore agent`, a separate process) pulls from a real registry with
 * basic auth, runs busybox with runc, and writes status. The agent is killed and restarted in
 * the middle of a run; a node whose agent never heartbeats again gets its runs marked Unknown.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { createControllerManager } from '../../src/controllers/setup.js';
import { API_VERSION, GROUP, VERSION } from '../../src/k8s/api/common.js';
import type { ContainerRun } from '../../src/k8s/api/containerrun.js';
import type { Manager } from '../../src/k8s/runtime/manager.js';
import { attemptContainerId } from '../../src/agent/naming.js';
import { listContainers } from '../../src/runtime/containers.js';
import { ociRuntime } from '../../src/runtime/oci-runtime.js';
import { ImageStore } from '../../src/runtime/store/index.js';
import { parseImageName } from '../../src/transports/index.js';
import { rootLogger } from '../../src/util/log.js';
import { ensureBuilt, REPO_ROOT, stevedore } from '../cli/stevedore.js';
import { makeBusyboxImage } from '../../hack/lib/harness/images.js';
import { startControlPlane, type ControlPlane } from '../../hack/lib/harness/controlplane.js';
import type { ManagedProcess } from '../../hack/lib/harness/procs.js';
import { startAgentProcess } from './agent-process.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { controllerToken, dockerConfigSecret, ok, waitFor } from './helpers.js';

const NS = 'runs';
const SYSTEM_NS = 'stevedore-system';
const NODE = 'node-a';

const temps = new TempDirs();
let cp: ControlPlane;
let reg: TestRegistry;
let image: string;
let imageDigest: string;
let storeRoot: string;
let agentLog: string;
let agent: ManagedProcess | undefined;
let manager: Manager;
let stop: AbortController;
let running: Promise<void>;

const runsPath = (name?: string) => `/apis/${GROUP}/${VERSION}/namespaces/${NS}/containerruns${name ? `/${name}` : ''}`;

let agentKubeconfig: string;

/** The helm that hack/helm.mk builds (as test/chart uses). */
function helmPath(): string {
  if (process.env['HELM']) return process.env['HELM'];
  const version = /^HELM_VERSION\s*:?=\s*(v\S+)/m.exec(readFileSync(join(REPO_ROOT, 'hack', 'helm.mk'), 'utf8'))![1]!;
  return join(process.env['STEVEDORE_CACHE'] || join(homedir(), '.cache', 'stevedore'), 'bin', `helm-${version}`);
}

/**
 * The agent runs with the chart's agent RBAC only (ServiceAccount token, not admin): this suite
 * passing shows those rules are enough.
 */
async function agentKubeconfigFromChart(dir: string): Promise<string> {
  const { stdout } = await promisify(execFile)(
    helmPath(),
    [
      'template',
      'stevedore',
      join(REPO_ROOT, 'charts', 'stevedore'),
      '--namespace',
      SYSTEM_NS,
      '--set',
      'agent.enabled=true',
      // The runs' namespace opts in to the agents reading its Secrets and ConfigMaps.
      '--set',
      `agent.secretNamespaces={${NS}}`,
    ],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  type Obj = { kind: string; metadata: { name: string; namespace?: string } };
  const paths: Record<string, (o: Obj) => string> = {
    ClusterRole: () => '/apis/rbac.authorization.k8s.io/v1/clusterroles',
    ClusterRoleBinding: () => '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
    Role: (o) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${o.metadata.namespace}/roles`,
    RoleBinding: (o) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${o.metadata.namespace}/rolebindings`,
  };
  const objs = parseAllDocuments(stdout).map((d) => d.toJS() as Obj | null);
  const agentObjs = objs.filter((o): o is Obj => !!o && o.kind in paths && o.metadata.name.includes('-agent'));
  // The agent's ValidatingAdmissionPolicy (node-bound tokens) is left out: this suite's agent token is not Pod-bound (test/tenancy covers it).
  expect(agentObjs.map((o) => `${o.kind} ${o.metadata.namespace ?? ''}`).sort()).toEqual([
    'ClusterRole ',
    'ClusterRole ',
    'ClusterRoleBinding ',
    `Role ${SYSTEM_NS}`,
    `RoleBinding ${NS}`,
    `RoleBinding ${SYSTEM_NS}`,
  ]);
  for (const o of agentObjs) await ok(cp, 'POST', paths[o.kind]!(o), o);
  const token = await cp.serviceAccountToken(SYSTEM_NS, 'stevedore-agent');
  const file = join(dir, 'agent.kubeconfig');
  await writeFile(file, cp.kubeConfigForToken(token).exportConfig());
  return file;
}

const startAgent = (): Promise<ManagedProcess> =>
  startAgentProcess({
    nodeName: NODE,
    kubeconfig: agentKubeconfig,
    leaseNamespace: SYSTEM_NS,
    namespace: NS,
    root: storeRoot,
    log: agentLog,
    extraArgs: ['--node-labels', 'disk=ssd,zone=a', '--stop-grace-period', '1s'],
  });

beforeAll(async () => {
  const built = ensureBuilt();
  [cp, reg] = await Promise.all([startControlPlane(), startRegistry({ name: 'runs', auth: 'basic' })]);
  await cp.installCRDs();
  await cp.createNamespace(NS);
  await cp.createNamespace(SYSTEM_NS);
  const fixture = await makeBusyboxImage(await temps.make('busybox'), 'latest');
  image = `${reg.host}/tools/busybox:1`;
  await copyReference(parseImageName(fixture.ociRef), parseImageName(`docker://${image}`), {
    destContext: { credentials: { username: reg.username!, password: reg.password! } },
  });
  imageDigest = fixture.descriptor.digest;
  await ok(cp, 'POST', `/api/v1/namespaces/${NS}/secrets`, dockerConfigSecret('pull', reg.host, reg.username!, reg.password!));
  storeRoot = await temps.make('agent-store');
  const agentDir = await temps.make('agent-log');
  agentLog = join(agentDir, 'agent.log');
  agentKubeconfig = await agentKubeconfigFromChart(agentDir);
  // The controller, too, runs as a ServiceAccount bound only to config/rbac/role.yaml.
  manager = createControllerManager({
    kubeConfig: cp.kubeConfigForToken(await controllerToken(cp, SYSTEM_NS, 'stevedore-controller', [NS])),
    namespace: NS,
    leaderElection: { namespace: SYSTEM_NS, name: 'runs-test' },
    containerRun: { nodeCheckMs: 300, failoverAfterMs: 2_000, unschedulableRetryMs: 500 },
    queue: { backoff: { baseMs: 200, maxMs: 2_000, jitter: 0.1 } },
    processMetrics: false,
    log: rootLogger.child({ test: 'containerrun' }, { level: 'error' }),
  });
  stop = new AbortController();
  running = manager.run(stop.signal);
  await built;
  agent = await startAgent();
}, 120_000);

afterAll(async () => {
  await agent?.stop();
  stop?.abort();
  await running;
  // Nothing this suite started may outlive it: kill containers still running in the store.
  if (storeRoot) {
    const store = await ImageStore.open(storeRoot);
    for (const c of await listContainers(store)) {
      if (c.status === 'running')
        await ociRuntime(c.runtime)
          .kill(c.id, 'SIGKILL', { all: true })
          .catch(() => undefined);
    }
  }
  await Promise.all([cp?.stop(), reg?.stop()]);
  await temps.cleanup();
}, 60_000);

function createRun(name: string, spec: Partial<ContainerRun['spec']>): Promise<ContainerRun> {
  return ok(cp, 'POST', runsPath(), {
    apiVersion: API_VERSION,
    kind: 'ContainerRun',
    metadata: { name },
    spec: { image, imagePullSecrets: [{ name: 'pull' }], ...spec },
  }) as Promise<ContainerRun>;
}

async function getRun(name: string): Promise<ContainerRun | undefined> {
  const res = await cp.request('GET', runsPath(name));
  if (res.status === 404) return undefined;
  if (res.status >= 300) throw new Error(`GET ${name}: ${res.status} ${res.body}`);
  return res.json as ContainerRun;
}

const phaseIs =
  (...phases: string[]) =>
  (r: ContainerRun | undefined) =>
    phases.includes(r?.status?.phase ?? '');

async function waitPhase(name: string, phases: string[], timeoutMs = 30_000): Promise<ContainerRun> {
  try {
    return (await waitFor(`${name} in ${phases.join('|')}`, () => getRun(name), phaseIs(...phases), timeoutMs))!;
  } catch (err) {
    console.log((await readFile(agentLog, 'utf8').catch(() => '')).split('\n').slice(-40).join('\n'));
    throw err;
  }
}

describe('ContainerRun on a real API server with a real node agent and runc', () => {
  it('runs to completion: Succeeded, exit 0, digest, times, log tail, and the whole log via `stevedore logs run/NAME`', async () => {
    await createRun('hello', { command: ['sh', '-c'], args: ['for i in $(busybox seq 1 60); do echo line $i; done; echo to-stderr >&2'] });
    const run = await waitPhase('hello', ['Succeeded', 'Failed']);
    expect(run.status).toMatchObject({ phase: 'Succeeded', reason: 'Completed', exitCode: 0, nodeName: NODE, imageDigest });
    expect(run.status?.restartCount).toBeUndefined();
    expect(run.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', reason: 'Completed' });
    expect(Date.parse(run.status!.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(run.status!.startedAt!));
    const tail = run.status!.logTail!.split('\n').filter(Boolean);
    // stdout and stderr are separate pipes: where to-stderr lands among the lines is not fixed.
    expect(tail).toHaveLength(50);
    expect(tail).toContain('line 60');
    expect(tail).not.toContain('line 9');
    expect(run.metadata.finalizers).toContain('stevedore.dev/containerrun');

    const logs = await stevedore(['logs', `run/hello`, '-n', NS, '--root', storeRoot]);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout.split('\n').filter(Boolean)).toHaveLength(60);
    expect(logs.stdout).toContain('line 1\n');
    expect(logs.stderr).toContain('to-stderr');
  });

  it('reports a non-zero exit as Failed/Error, and retries OnFailure up to backoffLimit', async () => {
    await createRun('exit3', { command: ['sh', '-c', 'echo failing; exit 3'] });
    await createRun('retry', { command: ['sh', '-c', 'echo attempt; exit 4'], restartPolicy: 'OnFailure', backoffLimit: 2 });
    const failed = await waitPhase('exit3', ['Succeeded', 'Failed']);
    expect(failed.status).toMatchObject({ phase: 'Failed', reason: 'Error', exitCode: 3, logTail: 'failing\n' });
    expect(failed.status?.signal).toBeUndefined();
    expect(failed.status?.conditions?.find((c) => c.type === 'Stalled')).toMatchObject({ status: 'True', reason: 'Error' });
    const retried = await waitPhase('retry', ['Succeeded', 'Failed']);
    expect(retried.status).toMatchObject({ phase: 'Failed', reason: 'BackoffLimitExceeded', exitCode: 4, restartCount: 2 });
    const logs = await stevedore(['logs', 'run/retry', '-n', NS, '--root', storeRoot]);
    expect(logs.stdout).toBe('attempt\nattempt\nattempt\n');
  });

  it('fails with ErrImagePull after backing off, when the registry refuses the pull (no imagePullSecrets)', async () => {
    await ok(cp, 'POST', runsPath(), { apiVersion: API_VERSION, kind: 'ContainerRun', metadata: { name: 'no-creds' }, spec: { image, command: ['true'] } });
    const backingOff = await waitFor(
      'no-creds backs off',
      () => getRun('no-creds'),
      (r) => r?.status?.reason === 'ErrImagePull',
      20_000,
    );
    expect(backingOff!.status?.phase).toMatch(/Pending|Failed/);
    const failed = await waitPhase('no-creds', ['Failed', 'Succeeded'], 30_000);
    expect(failed.status).toMatchObject({ phase: 'Failed', reason: 'ErrImagePull', message: expect.stringMatching(/401|unauthori[sz]ed|authentication/i) });
    expect(failed.status?.message).toContain('(3 tries)');
  });

  it('stops a run that exceeds spec.timeout: Failed, DeadlineExceeded, killed by SIGKILL after the grace period', async () => {
    const t0 = Date.now();
    await createRun('slow', { command: ['busybox', 'sleep', '60'], timeout: '1s' });
    const run = await waitPhase('slow', ['Succeeded', 'Failed']);
    expect(run.status).toMatchObject({ phase: 'Failed', reason: 'DeadlineExceeded', exitCode: 137, signal: 'SIGKILL' });
    expect(Date.now() - t0).toBeLessThan(20_000);
  });

  it('kills the container when the ContainerRun is deleted while running, then lets the object go', async () => {
    const created = await createRun('doomed', { command: ['busybox', 'sleep', '300'] });
    await waitPhase('doomed', ['Running']);
    const id = attemptContainerId(created.metadata.uid!, 0);
    const rec = JSON.parse(await readFile(join(storeRoot, 'containers', id, 'state.json'), 'utf8')) as { monitorPid: number };
    expect((await ociRuntime('runc').state(id)).status).toBe('running');
    await ok(cp, 'DELETE', runsPath('doomed'));
    await waitFor(
      'doomed gone',
      () => getRun('doomed'),
      (r) => r === undefined,
      20_000,
    );
    await expect(ociRuntime('runc').state(id)).rejects.toThrow();
    expect(
      await readFile(`/proc/${rec.monitorPid}/stat`, 'utf8').then(
        (st) => st.split(') ')[1]![0],
        () => 'gone',
      ),
    ).toMatch(/gone|Z/);
    expect(await readdir(join(storeRoot, 'containers'))).not.toContain(id);
  });

  it('survives an agent restart mid-run: the new agent reattaches and the run completes exactly once', async () => {
    const created = await createRun('long', { command: ['sh', '-c', 'echo started; busybox sleep 3; echo finished'] });
    await waitPhase('long', ['Running']);
    await agent!.stop(0); // SIGKILL-like: no clean shutdown
    agent = await startAgent();
    const run = await waitPhase('long', ['Succeeded', 'Failed'], 30_000);
    expect(run.status).toMatchObject({ phase: 'Succeeded', exitCode: 0, logTail: 'started\nfinished\n' });
    expect(run.status?.restartCount).toBeUndefined();
    const store = await ImageStore.open(storeRoot);
    const mine = (await listContainers(store)).filter((c) => c.name.startsWith(`${NS}_long_`));
    expect(mine.map((c) => c.id)).toEqual([attemptContainerId(created.metadata.uid!, 0)]);
    // And a further restart does not run the finished attempt again.
    await agent!.stop();
    agent = await startAgent();
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await listContainers(store)).filter((c) => c.name.startsWith(`${NS}_long_`))).toHaveLength(1);
    expect((await getRun('long'))?.status?.phase).toBe('Succeeded');
  });

  it('takes env from ConfigMap and Secret keys and mounts them as volumes; waits while one is missing', async () => {
    await ok(cp, 'POST', `/api/v1/namespaces/${NS}/secrets`, { metadata: { name: 'app-secret' }, data: { token: Buffer.from('s3cret').toString('base64') } });
    await createRun('configured', {
      command: ['sh', '-c', 'echo "$GREETING $TOKEN $FROM_ALL_mode"; cat /etc/app/greeting; echo; cat /secret/token; echo; echo "$LITERAL"'],
      env: [
        { name: 'GREETING', valueFrom: { configMapKeyRef: { name: 'app-config', key: 'greeting' } } },
        { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'app-secret', key: 'token' } } },
        { name: 'LITERAL', value: 'plain' },
      ],
      envFrom: [{ prefix: 'FROM_ALL_', configMapRef: { name: 'app-config' } }],
      volumes: [
        { name: 'config', mountPath: '/etc/app', configMap: { name: 'app-config' } },
        { name: 'secret', mountPath: '/secret', secret: { secretName: 'app-secret' } },
      ],
    });
    const waiting = await waitFor(
      'configured waits for its ConfigMap',
      () => getRun('configured'),
      (r) => r?.status?.reason === 'CreateContainerConfigError',
      20_000,
    );
    expect(waiting!.status).toMatchObject({ phase: 'Pending', message: expect.stringContaining('ConfigMap runs/app-config not found') });
    await ok(cp, 'POST', `/api/v1/namespaces/${NS}/configmaps`, { metadata: { name: 'app-config' }, data: { greeting: 'hello', mode: 'fast' } });
    const run = await waitPhase('configured', ['Succeeded', 'Failed'], 30_000);
    expect(run.status).toMatchObject({ phase: 'Succeeded', logTail: 'hello s3cret fast\nhello\ns3cret\nplain\n' });
  });

  it('marks a run Unknown when its node agent stops heartbeating, then fails it over (restartPolicy Never: Failed)', async () => {
    // A node whose agent announced itself once and then died: its Lease is old.
    const past = new Date(Date.now() - 60_000).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
    await ok(cp, 'POST', `/apis/coordination.k8s.io/v1/namespaces/${SYSTEM_NS}/leases`, {
      metadata: { name: 'stevedore-agent-node-dead', labels: { 'stevedore.dev/agent': 'true', 'stevedore.dev/node': 'node-dead' } },
      spec: { holderIdentity: 'node-dead', leaseDurationSeconds: 3, renewTime: past },
    });
    const created = await createRun('orphan', { nodeName: 'node-dead', command: ['true'] });
    // It was running there when the node went away (as the agent would have written).
    await ok(
      cp,
      'PATCH',
      `${runsPath('orphan')}/status`,
      { status: { phase: 'Running', nodeName: 'node-dead', reason: 'Running' } },
      'application/merge-patch+json',
    );
    const unknown = await waitPhase('orphan', ['Unknown'], 10_000);
    expect(unknown.status).toMatchObject({ reason: 'NodeLost', nodeName: 'node-dead' });
    const failed = await waitPhase('orphan', ['Failed'], 10_000);
    expect(failed.status).toMatchObject({ reason: 'NodeLost' });
    expect(created.metadata.uid).toBeTruthy();
    // Deleting it needs no agent: the controller releases runs on lost nodes.
    await ok(cp, 'DELETE', runsPath('orphan'));
    await waitFor(
      'orphan gone',
      () => getRun('orphan'),
      (r) => r === undefined,
      10_000,
    );
  });

  it('fails a run over when its agent dies (OnFailure): Unknown, rescheduled as attempt 2, the stale attempt stopped', async () => {
    // Long enough that attempt 1 still runs when the agent comes back; then attempt 2 runs it again.
    const created = await createRun('failover', { restartPolicy: 'OnFailure', backoffLimit: 1, command: ['sh', '-c', 'echo started; busybox sleep 10'] });
    await waitPhase('failover', ['Running']);
    await agent!.stop(0);
    agent = undefined;
    const unknown = await waitPhase('failover', ['Unknown'], 15_000);
    expect(unknown.status).toMatchObject({ reason: 'NodeLost', nodeName: NODE });
    const moved = await waitFor(
      'failover rescheduled',
      () => getRun('failover'),
      (r) => r?.status?.restartCount === 1 && r.status.phase === 'Pending',
      15_000,
    );
    expect(moved!.status?.reason).toMatch(/NodeLost|Unschedulable/);
    const first = attemptContainerId(created.metadata.uid!, 0);
    expect((await ociRuntime('runc').state(first)).status).toBe('running');
    agent = await startAgent();
    // The returning agent finds attempt 1 of a run that was taken from it: stopped and removed.
    await waitFor(
      'attempt 1 stopped',
      () =>
        ociRuntime('runc')
          .state(first)
          .then(
            (s) => s.status,
            () => 'gone',
          ),
      (s) => s === 'gone',
      20_000,
    );
    const done = await waitPhase('failover', ['Succeeded', 'Failed'], 30_000);
    expect(done.status).toMatchObject({ phase: 'Succeeded', restartCount: 1, nodeName: NODE, logTail: 'started\n' });
    expect(await readdir(join(storeRoot, 'containers'))).not.toContain(first);
  }, 60_000);

  it('leaves a run Pending/Unschedulable when no live agent matches its nodeSelector, and binds one that matches', async () => {
    await createRun('picky', { nodeSelector: { disk: 'hdd' }, command: ['true'] });
    await createRun('matching', { nodeSelector: { disk: 'ssd' }, command: ['true'] });
    const picky = await waitFor(
      'picky unschedulable',
      () => getRun('picky'),
      (r) => r?.status?.reason === 'Unschedulable',
      10_000,
    );
    expect(picky!.status).toMatchObject({ phase: 'Pending', message: expect.stringContaining('nodeSelector') });
    expect(picky!.status?.nodeName).toBeUndefined();
    const matching = await waitPhase('matching', ['Succeeded', 'Failed']);
    expect(matching.status, JSON.stringify(matching.status)).toMatchObject({ phase: 'Succeeded', nodeName: NODE });
  });

  it('accepts examples/containerrun.yaml and refuses a changed spec (runs are immutable)', async () => {
    const example = parseAllDocuments(readFileSync(join(REPO_ROOT, 'examples', 'containerrun.yaml'), 'utf8'))[0]!.toJS() as ContainerRun;
    await ok(cp, 'POST', `${runsPath()}?dryRun=All`, example);
    const res = await cp.request('PATCH', runsPath('hello'), {
      headers: { 'content-type': 'application/merge-patch+json' },
      body: JSON.stringify({ spec: { args: ['changed'] } }),
    });
    expect(res.status).toBe(422);
    expect(res.body).toContain('spec is immutable');
  });

  it('needed no right beyond the chart agent RBAC it runs with (nothing forbidden in its log)', async () => {
    const log = await readFile(agentLog, 'utf8');
    expect(log).toContain('container started');
    expect(log).not.toMatch(/forbidden/i);
  });
});
