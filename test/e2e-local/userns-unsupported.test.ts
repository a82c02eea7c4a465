/**
 * A real node whose runtime has no user-namespace support (containerd 2 with Debian's runc 1.1.5,
 * which predates idmapped mounts: containerd then reports userNamespaces: false). The kubelet
 * refuses any hostUsers: false Pod there, and would leave a build Pod creating its sandbox for
 * ever; the controller must say so in the ImageBuild's status instead and make no Pod.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createControllerManager } from '../../src/controllers/setup.js';
import type { Manager } from '../../src/k8s/runtime/manager.js';
import { rootLogger } from '../../src/util/log.js';
import { startNode, type LocalNode } from '../../hack/lib/harness/node.js';
import { runChecked } from '../../hack/lib/harness/procs.js';
import { condition, getJson, poll } from './lib.js';

const OLD_RUNC = '/usr/sbin/runc';
const NS = 'builds';
let node: LocalNode;
let manager: Manager;
let stop: AbortController;
let running: Promise<void>;

// The repository's vitest.config.ts gives tests 120 s; a first image pull and build take longer here.
const TEST_TIMEOUT_MS = 400_000;

beforeAll(async () => {
  if (!existsSync(OLD_RUNC)) throw new Error(`${OLD_RUNC} (Debian's runc 1.1) is needed: make deps`);
  const version = (await runChecked(OLD_RUNC, ['--version'])).stdout;
  expect(version).toMatch(/runc version 1\.1\./);
  node = await startNode({ runc: OLD_RUNC, extras: true });
  await node.controlPlane.installCRDs();
  await node.kubectl(['create', 'namespace', NS]);
  manager = createControllerManager({
    kubeConfig: node.kubeConfig,
    namespace: NS,
    // The chart's defaults for build Pods.
    buildPods: {
      image: `${node.registry.host}/stevedore/stevedore:none`,
      userNamespaces: true,
      runAsUser: 65532,
      seccompProfile: { type: 'Localhost', localhostProfile: 'stevedore/builder.json' },
    },
    processMetrics: false,
    log: rootLogger.child({ test: 'userns-unsupported' }, { level: 'error' }),
  });
  stop = new AbortController();
  running = manager.run(stop.signal);
}, 300_000);

afterAll(async () => {
  stop?.abort();
  await running?.catch(() => undefined);
  // No namespace deletion: its Pod never got a sandbox; stop() removes whatever containerd has.
  await node?.stop();
}, 180_000);

describe('a node without user-namespace support', () => {
  it(
    'is what the kubelet reports, and it refuses a hostUsers: false Pod (the build Pod would hang)',
    async () => {
      const n = await getJson<{ status: { runtimeHandlers?: { name: string; features?: { userNamespaces?: boolean } }[] } }>(node, ['node', node.nodeName]);
      expect(n!.status.runtimeHandlers?.find((h) => h.name === '')?.features?.userNamespaces).toBe(false);
      const pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'userns', namespace: NS },
        spec: { hostUsers: false, restartPolicy: 'Never', automountServiceAccountToken: false, containers: [{ name: 'c', image: node.pauseImage }] },
      };
      await node.kubectl(['apply', '-f', '-'], { input: JSON.stringify(pod) });
      const events = await poll(
        'the sandbox to be refused',
        () => node.kubectl(['get', 'events', '-n', NS, '--field-selector', 'involvedObject.name=userns', '-o', 'json']),
        (e) => e.includes('does not support user namespaces'),
        60_000,
      );
      expect(events).toContain('FailedCreatePodSandBox');
      const p = await getJson<{ status: { phase: string } }>(node, ['pod', '-n', NS, 'userns']);
      expect(p!.status.phase).toBe('Pending');
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'gives the ImageBuild a clear status and makes no build Pod',
    async () => {
      const ib = {
        apiVersion: 'stevedore.dev/v1alpha1',
        kind: 'ImageBuild',
        metadata: { name: 'app', namespace: NS },
        spec: { source: { inline: { containerfile: 'FROM scratch\n' } }, output: { image: `${node.registry.host}/e2e/app:1`, insecure: true } },
      };
      await node.kubectl(['apply', '-f', '-'], { input: JSON.stringify(ib) });
      type IB = { status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[]; podName?: string } };
      const got = await poll(
        'ImageBuild status',
        () => getJson<IB>(node, ['imagebuild', '-n', NS, 'app']),
        (v) => condition(v)?.reason === 'UserNamespacesUnsupported',
        60_000,
      );
      const ready = condition(got)!;
      expect(ready.status).toBe('False');
      expect(ready.message).toContain(`${node.nodeName} reports no user-namespace support`);
      expect(ready.message).toContain('runc >= 1.2');
      expect(got!.status!.podName).toBeUndefined();
      const pods = await node.kubectl(['get', 'pods', '-n', NS, '-l', 'app.kubernetes.io/component=build', '-o', 'name']);
      expect(pods.trim()).toBe('');
      // As a user sees it.
      expect(await node.kubectl(['get', 'imagebuild', '-n', NS, 'app', '-o', 'wide'])).toMatch(/app\s+False\s+UserNamespacesUnsupported/);
    },
    TEST_TIMEOUT_MS,
  );
});
