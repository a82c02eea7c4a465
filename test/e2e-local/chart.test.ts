/**
 * End to end on a real node (kubelet + containerd 2 + runc 1.3, hack/lib/harness/node.ts): the chart is
 * installed with helm as a user would, with its default build-Pod security (hostUsers: false, no
 * capability, not privileged, the Localhost seccomp profile the chart installs, procMount
 * Unmasked), the agent DaemonSet enabled, and the Stevedore image `make image` built.
 *
 * What runs where:
 * - build Pods and the agent run on the real kubelet, as the chart makes them;
 * - the controller runs in this machine's user space with the args of the chart's own Deployment
 *   (rendered by `helm template` with the same values) and the chart's ServiceAccount token: the
 *   node has no kube-proxy, so a Pod on the Pod network has no path to the API server's Service
 *   (and the chart's controller has no host-network switch). replicas=0 keeps its Deployment idle.
 * - The agent is on the host network; with no kube-proxy its in-cluster address is set to the API
 *   server's loopback one with agent.extraEnv (the ClusterIP range is routed to our bridge, so a
 *   Pod that tries the Service sends nothing off this machine).
 * - This host's / is a private mount, so the agent's store is made a shared bind mount first, the
 *   documented fallback (docs/real-node.md, "Agent").
 */
import { closeSync, openSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { parseImageName } from '../../src/transports/index.js';
import { REPO_ROOT } from '../cli/stevedore.js';
import { makeBusyboxImage } from '../../hack/lib/harness/images.js';
import { freePort } from '../../hack/lib/harness/net.js';
import { startNode, type LocalNode } from '../../hack/lib/harness/node.js';
import { runChecked, spawnManaged, type ManagedProcess } from '../../hack/lib/harness/procs.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { baseImageRebuild, nativeFanOut, type Ctx } from './imagebuild-native.js';
import { builtImageLayout, condition, docs, getJson, helm, poll } from './lib.js';
import { makeSharedMount } from './shared-mount.js';

const SYSTEM_NS = 'stevedore-system';
const NS = 'team';
const BASELINE_NS = 'baseline-team';
const temps = new TempDirs();
const timings: Record<string, number> = {};
let node: LocalNode;
let controller: ManagedProcess | undefined;
let controllerLog: string;
let stevedoreImage: string;
let base: string;
let unmountStore: (() => Promise<void>) | undefined;

/** Values as a user sets them for this node; everything about build-Pod security stays default. */
function values(storePath: string, apiPort: string, agentPort: number): string[] {
  return [
    '--set',
    'replicas=0',
    // The namespaces whose ImageBuilds and ContainerRuns this release serves (RoleBindings there).
    '--set-json',
    `tenantNamespaces=${JSON.stringify([NS, BASELINE_NS])}`,
    '--set',
    `image.repository=${stevedoreImage.slice(0, stevedoreImage.lastIndexOf(':'))}`,
    '--set',
    `image.tag=${stevedoreImage.slice(stevedoreImage.lastIndexOf(':') + 1)}`,
    '--set',
    `buildSeccompProfile.kubeletRootDir=${node.kubeletRoot}`,
    '--set',
    'agent.enabled=true',
    '--set',
    `agent.storePath=${storePath}`,
    // Not the machine's /run/runc, which other runc users on this host share.
    '--set',
    `agent.runcStatePath=${join(node.dir, 'agent-runc')}`,
    '--set',
    'agent.leaseDuration=10s',
    // The base-image poll minimum (1m by default) low enough for the rebuild test's interval: 2s.
    '--set',
    'buildPods.minBaseImagePollInterval=2s',
    // The agent is on the host network: its metrics/probe port on loopback only, not every interface.
    '--set',
    `agent.metricsPort=${agentPort}`,
    '--set-json',
    `agent.extraArgs=${JSON.stringify([`--metrics-addr=127.0.0.1:${agentPort}`])}`,
    '--set-json',
    `agent.extraEnv=${JSON.stringify([
      { name: 'KUBERNETES_SERVICE_HOST', value: '127.0.0.1' },
      { name: 'KUBERNETES_SERVICE_PORT', value: apiPort },
    ])}`,
  ];
}

/** `make demo-node` prints what a user would look at. */
const show = (title: string, text: string) => {
  if (process.env['STEVEDORE_DEMO']) console.log(`\n$ ${title}\n${text.trimEnd()}`);
};

async function explain(): Promise<string> {
  const out: string[] = [];
  for (const args of [
    ['get', 'pods', '-A', '-o', 'wide'],
    ['get', 'events', '-A', '--sort-by=.lastTimestamp'],
  ]) {
    out.push(await node.kubectl(args).catch((e: Error) => e.message));
  }
  out.push(`--- kubelet:\n${await node.log('kubelet', 30)}`);
  out.push(
    `--- agent:\n${await node.kubectl(['logs', '-n', SYSTEM_NS, '-l', 'app.kubernetes.io/component=agent', '--tail=40']).catch((e: Error) => e.message)}`,
  );
  if (controllerLog)
    out.push(
      `--- controller:\n${await runChecked('tail', ['-n', '40', controllerLog]).then(
        (r) => r.stdout,
        () => '',
      )}`,
    );
  return out.join('\n');
}

// The repository's vitest.config.ts gives tests 120 s; a first image pull and build take longer here.
const TEST_TIMEOUT_MS = 400_000;

beforeAll(async () => {
  const t0 = Date.now();
  node = await startNode({ timings });
  timings['nodeStart'] = Date.now() - t0;

  // The image `make image` built, and a busybox base, into the node's registry.
  let s = Date.now();
  stevedoreImage = `${node.registry.host}/stevedore/stevedore:e2e`;
  await copyReference(parseImageName(builtImageLayout()), parseImageName(`docker://${stevedoreImage}`), { destContext: { tlsVerify: false } });
  const fixture = await makeBusyboxImage(await temps.make('busybox'), 'latest');
  base = `${node.registry.host}/e2e/busybox:1`;
  await copyReference(parseImageName(fixture.ociRef), parseImageName(`docker://${base}`), { destContext: { tlsVerify: false } });
  timings['imagesPushed'] = Date.now() - s;

  s = Date.now();
  const storePath = join(node.dir, 'agent-store');
  unmountStore = await makeSharedMount(storePath);
  // Tenant namespaces exist before the release binds its roles in them.
  await node.kubectl(['create', 'namespace', NS]);
  await node.kubectl(['create', 'namespace', BASELINE_NS]);
  await node.kubectl(['label', 'namespace', BASELINE_NS, 'pod-security.kubernetes.io/enforce=baseline']);
  const apiPort = new URL(node.controlPlane.server).port;
  const agentPort = await freePort();
  await helm(node, [
    'install',
    'stevedore',
    join(REPO_ROOT, 'charts', 'stevedore'),
    '--namespace',
    SYSTEM_NS,
    '--create-namespace',
    ...values(storePath, apiPort, agentPort),
    '--wait',
    '--timeout',
    '4m',
  ]);
  timings['helmInstall'] = Date.now() - s;

  // The controller, with the args of the chart's Deployment and its ServiceAccount's token.
  const rendered = docs(
    await helm(node, ['template', 'stevedore', join(REPO_ROOT, 'charts', 'stevedore'), '--namespace', SYSTEM_NS, ...values(storePath, apiPort, agentPort)]),
  );
  const deployment = rendered.find((d) => d['kind'] === 'Deployment') as {
    spec: { template: { spec: { serviceAccountName: string; containers: { args: string[] }[] } } };
  };
  const podSpec = deployment.spec.template.spec;
  // Only loopback here: the Pod's ":8080" would listen on every interface of this machine.
  const metricsAddr = `--metrics-addr=127.0.0.1:${await freePort()}`;
  const args = podSpec.containers[0]!.args.map((a) => a.replace('$(POD_NAMESPACE)', SYSTEM_NS)).map((a) => (a.startsWith('--metrics-addr=') ? metricsAddr : a));
  const token = await node.controlPlane.serviceAccountToken(SYSTEM_NS, podSpec.serviceAccountName);
  const dir = await temps.make('e2e-controller');
  const kubeconfig = join(dir, 'controller.kubeconfig');
  await writeFile(kubeconfig, node.controlPlane.kubeConfigForToken(token).exportConfig());
  controllerLog = join(dir, 'controller.log');
  const fd = openSync(controllerLog, 'a');
  try {
    controller = await spawnManaged(process.execPath, [join(REPO_ROOT, 'bin', 'stevedore.js'), ...args, '--kubeconfig', kubeconfig], {
      output: [fd, fd],
      env: { ...process.env, POD_NAMESPACE: SYSTEM_NS, STEVEDORE_LOG_LEVEL: 'info' },
    });
  } finally {
    closeSync(fd);
  }
}, 600_000);

afterAll(async () => {
  const s = Date.now();
  // The run goes first, while agent and controller still work: the agent removes its container
  // (runc, outside containerd); the node's stop() removes every Pod through the CRI.
  await node?.kubectl(['delete', 'containerrun', '-n', NS, '--all', '--wait=true', '--timeout=60s']).catch(() => undefined);
  await controller?.stop();
  await node?.stop();
  timings['teardown'] = Date.now() - s;
  await unmountStore?.();
  await temps.cleanup();
  console.log(`e2e-local timings (ms): ${JSON.stringify(timings)}`);
}, 180_000);

describe('Stevedore on a real node (kubelet + containerd + runc), installed with helm', () => {
  it(
    'installs the build seccomp profile where the kubelet reads Localhost profiles',
    async () => {
      // helm --wait accepts a DaemonSet with maxUnavailable (1) Pods not ready: wait for ours.
      const ds = await poll(
        'the seccomp installer DaemonSet ready',
        () => getJson<{ status: { numberReady?: number } }>(node, ['daemonset', '-n', SYSTEM_NS, 'stevedore-build-seccomp']),
        (v) => v?.status.numberReady === 1,
        60_000,
        explain,
      );
      expect(ds?.status.numberReady).toBe(1);
      // Running (it has no readiness probe) comes a moment before its first write.
      const installed = await poll(
        'the profile on the node',
        () => readFile(join(node.kubeletRoot, 'seccomp', 'stevedore', 'builder.json'), 'utf8').catch(() => ''),
        (v) => v !== '',
        30_000,
        explain,
      );
      const shipped = await readFile(join(REPO_ROOT, 'charts', 'stevedore', 'files', 'seccomp-builder.json'), 'utf8');
      expect(JSON.parse(installed)).toEqual(JSON.parse(shipped));
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'builds RUN steps, COPY and two stages in a real build Pod with the chart defaults, and pushes',
    async () => {
      const out = `${node.registry.host}/e2e/app:1`;
      const containerfile = [
        `FROM ${base} AS build`,
        // The step's routes too: whatever a tenant's RUN step sends has no way off this machine.
        'RUN mkdir -p /out && echo "hello from a RUN step" > /out/msg && id -u > /out/uid && cat /proc/net/route > /out/routes',
        `FROM ${base}`,
        'COPY --from=build /out/ /etc/e2e/',
        'RUN cat /etc/e2e/msg /etc/e2e/uid /etc/e2e/routes > /etc/e2e/all',
        'CMD ["cat", "/etc/e2e/all"]',
      ].join('\n');
      const manifest = {
        apiVersion: 'stevedore.dev/v1alpha1',
        kind: 'ImageBuild',
        metadata: { name: 'app', namespace: NS },
        spec: { source: { inline: { containerfile } }, output: { image: out, insecure: true }, timeout: '10m' },
      };
      const s = Date.now();
      await node.kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifest) });
      type IB = {
        status?: {
          conditions?: { type: string; status: string; reason?: string; message?: string }[];
          imageDigest?: string;
          podName?: string;
          failureDetails?: unknown;
        };
      };
      const ib = await poll(
        'ImageBuild app Ready',
        () => getJson<IB>(node, ['imagebuild', '-n', NS, 'app']),
        (v) => condition(v)?.status === 'True' || condition(v, 'Stalled')?.status === 'True',
        300_000,
        explain,
      );
      timings['buildPod'] = Date.now() - s;
      expect(condition(ib), JSON.stringify(ib?.status)).toMatchObject({ status: 'True', reason: 'Succeeded' });
      expect(ib!.status!.imageDigest).toMatch(/^sha256:[0-9a-f]{64}$/);

      // The Pod the controller made ran on the kubelet, under the chart's defaults.
      // The controller reads the result from the terminated build container; the Pod's phase follows.
      const pod = await poll(
        'the build Pod Succeeded',
        () => getJson<{ spec: Record<string, any>; status: { phase: string } }>(node, ['pod', '-n', NS, ib!.status!.podName!]),
        (v) => v?.status.phase === 'Succeeded' || v?.status.phase === 'Failed',
        30_000,
        explain,
      );
      expect(pod?.status.phase).toBe('Succeeded');
      expect(pod!.spec['nodeName']).toBe(node.nodeName);
      expect(pod!.spec['hostUsers']).toBe(false);
      expect(pod!.spec['securityContext'].seccompProfile).toEqual({ type: 'Localhost', localhostProfile: 'stevedore/builder.json' });
      for (const c of [...pod!.spec['initContainers'], ...pod!.spec['containers']]) {
        expect(c.securityContext.privileged).toBe(false);
        expect(c.securityContext.capabilities).toEqual({ drop: ['ALL'] });
        expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
      }
      expect(pod!.spec['containers'][0].securityContext.procMount).toBe('Unmasked');

      // As a user sees it.
      const table = await node.kubectl(['get', 'imagebuild', '-n', NS, 'app']);
      show(`kubectl get imagebuild -n ${NS} app`, table);
      show(
        `kubectl get pod -n ${NS} ${ib!.status!.podName} (security settings)`,
        JSON.stringify(
          { hostUsers: pod!.spec['hostUsers'], securityContext: pod!.spec['securityContext'], build: pod!.spec['containers'][0].securityContext },
          null,
          2,
        ),
      );
      expect(table).toMatch(/app\s+True\s+Succeeded\s+sha256:/);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "says so in status when a namespace's Pod Security level refuses build Pods (baseline forbids procMount: Unmasked)",
    async () => {
      const ns = BASELINE_NS;
      const manifest = {
        apiVersion: 'stevedore.dev/v1alpha1',
        kind: 'ImageBuild',
        metadata: { name: 'app', namespace: ns },
        spec: { source: { inline: { containerfile: `FROM ${base}\nRUN true\n` } }, output: { image: `${node.registry.host}/e2e/baseline:1`, insecure: true } },
      };
      await node.kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifest) });
      type IB = { status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] } };
      const ib = await poll(
        'ImageBuild status',
        () => getJson<IB>(node, ['imagebuild', '-n', ns, 'app']),
        (v) => condition(v)?.reason === 'PodSecurityRejected',
        60_000,
        explain,
      );
      expect(condition(ib)!.status).toBe('False');
      expect(condition(ib)!.message).toContain('procMount');
      expect((await node.kubectl(['get', 'pods', '-n', ns, '-o', 'name'])).trim()).toBe('');
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'mirrors the built image with an ImageMirror',
    async () => {
      const mirror = {
        apiVersion: 'stevedore.dev/v1alpha1',
        kind: 'ImageMirror',
        metadata: { name: 'app', namespace: NS },
        spec: {
          source: { registry: { repository: `${node.registry.host}/e2e/app`, insecure: true } },
          destination: { registry: { repository: `${node.registry.host}/mirror/app`, insecure: true } },
          tags: { list: ['1'] },
        },
      };
      await node.kubectl(['apply', '-f', '-'], { input: JSON.stringify(mirror) });
      const built = await getJson<{ status: { imageDigest: string } }>(node, ['imagebuild', '-n', NS, 'app']);
      type IM = { status?: { conditions?: { type: string; status: string; reason?: string }[]; tags?: { tag: string; digest?: string }[] } };
      const im = await poll(
        'ImageMirror app Ready',
        () => getJson<IM>(node, ['imagemirror', '-n', NS, 'app']),
        (v) => condition(v)?.status === 'True' || condition(v, 'Stalled')?.status === 'True',
        120_000,
        explain,
      );
      expect(condition(im), JSON.stringify(im?.status)).toMatchObject({ status: 'True' });
      expect(JSON.stringify(im!.status)).toContain(built!.status.imageDigest);
      show(`kubectl get imagemirror -n ${NS} app`, await node.kubectl(['get', 'imagemirror', '-n', NS, 'app']));
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'runs the built image with a ContainerRun, executed by the agent DaemonSet Pod',
    async () => {
      const agents = await getJson<{ items: { spec: { nodeName: string }; status: { phase: string } }[] }>(node, [
        'pods',
        '-n',
        SYSTEM_NS,
        '-l',
        'app.kubernetes.io/component=agent',
      ]);
      expect(agents!.items.map((p) => [p.spec.nodeName, p.status.phase])).toEqual([[node.nodeName, 'Running']]);
      const run = {
        apiVersion: 'stevedore.dev/v1alpha1',
        kind: 'ContainerRun',
        metadata: { name: 'app', namespace: NS },
        // The agent is on the host network: it pulls through the registry's loopback address.
        spec: { image: `${node.registryLoopbackHost}/e2e/app:1`, timeout: '2m' },
      };
      const s = Date.now();
      await node.kubectl(['apply', '-f', '-'], { input: JSON.stringify(run) });
      type CR = { status?: { phase?: string; exitCode?: number; nodeName?: string; logTail?: string; reason?: string; message?: string } };
      const cr = await poll(
        'ContainerRun app finished',
        () => getJson<CR>(node, ['containerrun', '-n', NS, 'app']),
        (v) => v?.status?.phase === 'Succeeded' || v?.status?.phase === 'Failed',
        180_000,
        explain,
      );
      timings['containerRun'] = Date.now() - s;
      expect(cr!.status, JSON.stringify(cr!.status)).toMatchObject({ phase: 'Succeeded', exitCode: 0, nodeName: node.nodeName });
      expect(cr!.status!.logTail).toContain('hello from a RUN step');
      // /proc/net/route of the build's RUN step: its header, and no default route (destination 0).
      const routes = cr!.status!.logTail!.split('\n').filter((l) => /^\S+\t[0-9A-F]{8}\t/.test(l));
      expect(routes.filter((l) => l.split('\t')[1] === '00000000')).toEqual([]);
      expect(cr!.status!.logTail).toContain('Iface\tDestination\tGateway');
      const table = await node.kubectl(['get', 'crun', '-n', NS, 'app', '-o', 'wide']);
      show(`kubectl get crun -n ${NS} app -o wide`, `${table}\nlogTail:\n${cr!.status!.logTail}`);
      show(`kubectl get pods -n ${SYSTEM_NS} -o wide`, await node.kubectl(['get', 'pods', '-n', SYSTEM_NS, '-o', 'wide']));
      expect(table).toMatch(/app\s+Succeeded\s+0/);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "refuses, at admission, a tenant's run that asks for the node (host network, no user namespace); the tenant cannot grant itself the level",
    async () => {
      // A tenant as a platform team makes one: a user bound to a namespaced Role over ContainerRuns.
      const rbac = 'rbac.authorization.k8s.io/v1';
      const role = {
        apiVersion: rbac,
        kind: 'Role',
        metadata: { name: 'tenant-runs', namespace: NS },
        rules: [{ apiGroups: ['stevedore.dev'], resources: ['containerruns'], verbs: ['create', 'get', 'list'] }],
      };
      const binding = {
        apiVersion: rbac,
        kind: 'RoleBinding',
        metadata: { name: 'tenant-runs', namespace: NS },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'tenant-runs' },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'tenant' }],
      };
      await node.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [role, binding] }) });
      const attempt = (name: string, spec: Record<string, unknown>) =>
        node
          .kubectl(['--as=tenant', 'create', '-f', '-'], {
            input: JSON.stringify({
              apiVersion: 'stevedore.dev/v1alpha1',
              kind: 'ContainerRun',
              metadata: { name, namespace: NS },
              spec: { image: `${node.registryLoopbackHost}/e2e/app:1`, ...spec },
            }),
          })
          .then(
            () => 'accepted',
            (e: Error) => e.message,
          );
      // The chart's ValidatingAdmissionPolicy (helm-installed above) decides; the namespace has no privilege label.
      const hostNet = await poll(
        'the host-network run refused',
        () => attempt('host-net', { network: 'host', user: '0' }),
        (m) => m !== 'accepted',
        60_000,
      );
      expect(hostNet).toMatch(/ContainerRun rule hostNetwork/);
      expect(hostNet).toContain('stevedore.dev/containerrun-privileges=privileged');
      expect(await attempt('host-users', { hostUsers: true })).toMatch(/ContainerRun rule hostUsers/);
      const grant = await node.kubectl(['--as=tenant', 'label', 'namespace', NS, 'stevedore.dev/containerrun-privileges=privileged']).then(
        () => 'granted',
        (e: Error) => e.message,
      );
      expect(grant).toMatch(/forbidden/i);
      expect(await getJson(node, ['containerrun', '-n', NS, 'host-net'])).toBeUndefined();
    },
    TEST_TIMEOUT_MS,
  );

  // Last: the arm64 Node object these lend for a while would otherwise get DaemonSet Pods the tests above count.
  const ctx = (): Ctx => ({ node, ns: NS, temps, explain, show, timings });

  it(
    'fans a two-platform ImageBuild out to one build Pod per architecture, scheduled by node labels, and pushes the index',
    async () => {
      await nativeFanOut(ctx());
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'builds again when the FROM image is pushed again under the same tag, and records the base digest each build used',
    async () => {
      await baseImageRebuild(ctx());
    },
    TEST_TIMEOUT_MS,
  );
});
