/**
 * The node agent's signature policy (`stevedore agent --policy FILE`) on a real kube-apiserver: a
 * real agent process with a containers-policy.json, a real registry with basic auth, runc. An
 * image signed by the policy's key runs (pulled by the digest the policy judged); the same
 * busybox unsigned in another repository is refused with PolicyDenied before anything is pulled
 * or run, with a Warning Event; a policy file that does not parse stops the agent at start-up.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { createControllerManager } from '../../src/controllers/setup.js';
import { API_VERSION, GROUP, VERSION } from '../../src/k8s/api/common.js';
import type { ContainerRun } from '../../src/k8s/api/containerrun.js';
import type { Manager } from '../../src/k8s/runtime/manager.js';
import { parseReference } from '../../src/oci/reference.js';
import { listContainers } from '../../src/runtime/containers.js';
import { ociRuntime } from '../../src/runtime/oci-runtime.js';
import { ImageStore } from '../../src/runtime/store/index.js';
import { generateKeyPair, loadPrivateKey } from '../../src/sign/keys.js';
import { signImage } from '../../src/sign/sign.js';
import { parseImageName } from '../../src/transports/index.js';
import { rootLogger } from '../../src/util/log.js';
import { cleanupCli, ensureBuilt, stevedore } from '../cli/stevedore.js';
import { makeBusyboxImage } from '../../hack/lib/harness/images.js';
import { startControlPlane, type ControlPlane } from '../../hack/lib/harness/controlplane.js';
import type { ManagedProcess } from '../../hack/lib/harness/procs.js';
import { startAgentProcess } from './agent-process.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { dockerConfigSecret, ok, waitFor } from './helpers.js';

const NS = 'policy-runs';
const SYSTEM_NS = 'stevedore-system';
const NODE = 'node-p';

const temps = new TempDirs();
let cp: ControlPlane;
let reg: TestRegistry;
let dir: string;
let signed: string;
let unsigned: string;
let busyboxDigest: string;
let storeRoot: string;
let agentLog: string;
let agent: ManagedProcess | undefined;
let manager: Manager;
let stop: AbortController;
let running: Promise<void>;

const runsPath = (name?: string) => `/apis/${GROUP}/${VERSION}/namespaces/${NS}/containerruns${name ? `/${name}` : ''}`;

const startAgent = (policyFile: string): Promise<ManagedProcess> =>
  startAgentProcess({
    nodeName: NODE,
    kubeconfig: cp.kubeconfigPath,
    leaseNamespace: SYSTEM_NS,
    namespace: NS,
    root: storeRoot,
    log: agentLog,
    extraArgs: ['--no-read-node-labels', '--policy', policyFile],
  });

beforeAll(async () => {
  const built = ensureBuilt();
  [cp, reg] = await Promise.all([startControlPlane(), startRegistry({ name: 'policy-runs', auth: 'basic' })]);
  await cp.installCRDs();
  await cp.createNamespace(NS);
  await cp.createNamespace(SYSTEM_NS);
  dir = await temps.make('policy');
  const credentials = { username: reg.username!, password: reg.password! };
  // The same busybox in two repositories: only the policy (a signature) tells them apart.
  const fixture = await makeBusyboxImage(await temps.make('busybox'), 'latest');
  busyboxDigest = fixture.descriptor.digest;
  signed = `${reg.host}/trusted/busybox:1`;
  unsigned = `${reg.host}/untrusted/busybox:1`;
  for (const dest of [signed, unsigned]) {
    await copyReference(parseImageName(fixture.ociRef), parseImageName(`docker://${dest}`), { destContext: { credentials } });
  }
  const pair = generateKeyPair('pw');
  await writeFile(join(dir, 'cosign.key'), pair.privatePem);
  await signImage(parseReference(signed), await loadPrivateKey(join(dir, 'cosign.key'), 'pw'), { context: { credentials } });
  // As the chart renders it: the public key inline (keyData), every other image rejected.
  const requirement = [{ type: 'sigstoreSigned', keyData: Buffer.from(pair.publicPem).toString('base64') }];
  const policy = {
    default: [{ type: 'reject' }],
    transports: { docker: { [`${reg.host}/trusted`]: requirement, [`${reg.host}/untrusted`]: requirement } },
  };
  await writeFile(join(dir, 'policy.json'), JSON.stringify(policy, null, 2));
  await ok(cp, 'POST', `/api/v1/namespaces/${NS}/secrets`, dockerConfigSecret('pull', reg.host, reg.username!, reg.password!));
  storeRoot = await temps.make('agent-store');
  agentLog = join(dir, 'agent.log');
  manager = createControllerManager({
    kubeConfig: cp.kubeConfig,
    namespace: NS,
    leaderElection: { namespace: SYSTEM_NS, name: 'policy-runs-test' },
    containerRun: { nodeCheckMs: 300, failoverAfterMs: 5_000, unschedulableRetryMs: 500 },
    queue: { backoff: { baseMs: 200, maxMs: 2_000, jitter: 0.1 } },
    processMetrics: false,
    log: rootLogger.child({ test: 'containerrun-policy' }, { level: 'error' }),
  });
  stop = new AbortController();
  running = manager.run(stop.signal);
  await built;
  agent = await startAgent(join(dir, 'policy.json'));
}, 120_000);

afterAll(async () => {
  await agent?.stop();
  stop?.abort();
  await running;
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
  await cleanupCli();
  await temps.cleanup();
}, 60_000);

function createRun(name: string, spec: Partial<ContainerRun['spec']>): Promise<ContainerRun> {
  return ok(cp, 'POST', runsPath(), {
    apiVersion: API_VERSION,
    kind: 'ContainerRun',
    metadata: { name },
    spec: { imagePullSecrets: [{ name: 'pull' }], ...spec },
  }) as Promise<ContainerRun>;
}

async function getRun(name: string): Promise<ContainerRun | undefined> {
  const res = await cp.request('GET', runsPath(name));
  if (res.status === 404) return undefined;
  if (res.status >= 300) throw new Error(`GET ${name}: ${res.status} ${res.body}`);
  return res.json as ContainerRun;
}

async function waitDone(name: string, timeoutMs = 30_000): Promise<ContainerRun> {
  try {
    return (await waitFor(
      `${name} finished`,
      () => getRun(name),
      (r) => ['Succeeded', 'Failed'].includes(r?.status?.phase ?? ''),
      timeoutMs,
    ))!;
  } catch (err) {
    console.log((await readFile(agentLog, 'utf8').catch(() => '')).split('\n').slice(-40).join('\n'));
    throw err;
  }
}

describe('ContainerRun with the node agent’s image policy (stevedore agent --policy)', () => {
  it('runs an image signed by the policy’s key, pulled by the digest the policy judged', async () => {
    await createRun('signed', { image: signed, command: ['sh', '-c', 'echo trusted'] });
    const run = await waitDone('signed');
    expect(run.status, JSON.stringify(run.status)).toMatchObject({
      phase: 'Succeeded',
      reason: 'Completed',
      exitCode: 0,
      imageDigest: busyboxDigest,
      logTail: 'trusted\n',
    });
    const names = (await (await ImageStore.open(storeRoot)).list()).map((i) => i.name);
    expect(names).toContain(`${reg.host}/trusted/busybox@${busyboxDigest}`);
  });

  it('refuses an unsigned image: Failed/PolicyDenied with the policy’s reason and a Warning Event, nothing pulled or run', async () => {
    const created = await createRun('unsigned', { image: unsigned, command: ['sh', '-c', 'echo should-not-run'], restartPolicy: 'OnFailure', backoffLimit: 3 });
    const run = await waitDone('unsigned');
    expect(run.status, JSON.stringify(run.status)).toMatchObject({ phase: 'Failed', reason: 'PolicyDenied', nodeName: NODE });
    expect(run.status?.message).toContain(`refused ${unsigned}`);
    expect(run.status?.message).toMatch(/signature/i);
    // Not retried under OnFailure: the same image would be refused again.
    expect(run.status?.restartCount).toBeUndefined();
    expect(run.status?.exitCode).toBeUndefined();
    expect(run.status?.imageDigest).toBeUndefined();
    expect(run.status?.conditions?.find((c) => c.type === 'Stalled')).toMatchObject({ status: 'True', reason: 'PolicyDenied' });
    const store = await ImageStore.open(storeRoot);
    expect((await store.list()).map((i) => i.name).filter((n) => n.includes('/untrusted/'))).toEqual([]);
    expect((await listContainers(store)).filter((c) => c.name.startsWith(`${NS}_unsigned_`))).toEqual([]);
    const events = await waitFor(
      'PolicyDenied event',
      async () =>
        (await cp.request('GET', `/apis/events.k8s.io/v1/namespaces/${NS}/events`)).json as {
          items: Array<{ type: string; reason: string; note: string; regarding: { uid: string } }>;
        },
      (e) => e.items.some((i) => i.reason === 'PolicyDenied' && i.regarding.uid === created.metadata.uid),
      10_000,
    );
    const ev = events.items.find((i) => i.reason === 'PolicyDenied')!;
    expect(ev.type).toBe('Warning');
    expect(ev.note).toContain('refused');
  });

  it('will not start with a policy file that does not parse, or one that is missing', async () => {
    const bad = join(dir, 'bad-policy.json');
    await writeFile(
      bad,
      JSON.stringify({
        default: [{ type: 'insecureAcceptAnything' }],
        transports: { docker: { x: [{ type: 'sigstoreSigned', keyPath: '/k.pub', colour: 'red' }] } },
      }),
    );
    for (const [file, expected] of [
      [bad, /invalid policy.*unknown field "colour"/],
      [join(dir, 'missing.json'), /cannot read policy file/],
    ] as const) {
      const res = await stevedore(
        [
          'agent',
          '--node-name',
          'node-bad',
          '--kubeconfig',
          cp.kubeconfigPath,
          '--lease-namespace',
          SYSTEM_NS,
          '--root',
          await temps.make('bad-store'),
          '--metrics-addr',
          '127.0.0.1:0',
          '--policy',
          file,
        ],
        { timeoutMs: 30_000 },
      );
      expect(res.code, res.stderr).not.toBe(0);
      expect(res.stderr).toMatch(expected);
    }
    // It never announced itself: no heartbeat Lease for that node.
    const lease = await cp.request('GET', `/apis/coordination.k8s.io/v1/namespaces/${SYSTEM_NS}/leases/stevedore-agent-node-bad`);
    expect(lease.status).toBe(404);
  });
});
