/**
 * What every ImageBuild suite runs beside the real API server: the kubelet stand-in for build Pods
 * (their processes run as the Pod's runAsUser, 65532, in a user namespace of their own for
 * hostUsers: false) and the controller manager, authenticated as a ServiceAccount bound only to
 * config/rbac (role.yaml, and tenant-role.yaml in its namespace).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createControllerManager } from '../../src/controllers/setup.js';
import { rootLogger } from '../../src/util/log.js';
import type { ControlPlane } from '../../hack/lib/harness/controlplane.js';
import { startKubeletStandIn, type KubeletStandIn } from '../../hack/lib/harness/kubelet-standin.js';
import { REPO_ROOT, cliTempDir } from '../cli/stevedore.js';
import { controllerToken } from './helpers.js';

/** The image build Pods name; the stand-in runs it as `node bin/stevedore.js`. */
export const BUILD_IMAGE = 'stevedore.test/stevedore:dev';

export interface BuildRig {
  kubelet: KubeletStandIn;
  stop(): Promise<void>;
}

export async function startBuildRig(
  cp: ControlPlane,
  o: { namespace: string; systemNamespace: string; name: string; minBaseImagePollMs?: number },
): Promise<BuildRig> {
  // An empty auth file: build Pods get credentials only from their Secrets (no COSIGN_PASSWORD
  // or registry login leaks in from the test's environment).
  const cliEnv = await cliTempDir('kubelet-env');
  await writeFile(join(cliEnv, 'auth.json'), '{"auths":{}}');
  const kubelet = await startKubeletStandIn({
    kubeConfig: cp.kubeConfig,
    namespace: o.namespace,
    entrypoints: { [BUILD_IMAGE]: [process.execPath, join(REPO_ROOT, 'bin', 'stevedore.js')] },
    env: { PATH: process.env.PATH, REGISTRY_AUTH_FILE: join(cliEnv, 'auth.json') },
  });
  const manager = createControllerManager({
    kubeConfig: cp.kubeConfigForToken(await controllerToken(cp, o.systemNamespace, 'stevedore-controller', [o.namespace])),
    namespace: o.namespace,
    queue: { backoff: { baseMs: 200, maxMs: 2_000, jitter: 0.1 } },
    processMetrics: false,
    buildPods: { image: BUILD_IMAGE, userNamespaces: true, runAsUser: 65532 },
    ...(o.minBaseImagePollMs !== undefined ? { minBaseImagePollMs: o.minBaseImagePollMs } : {}),
    log: rootLogger.child({ test: o.name }, { level: 'error' }),
  });
  const abort = new AbortController();
  const running = manager.run(abort.signal);
  return {
    kubelet,
    async stop() {
      abort.abort();
      await running;
      await kubelet.stop();
    },
  };
}
