// `make demo` helper: a local Kubernetes control plane (etcd + kube-apiserver on loopback) with the
// repository's CRDs installed.
//   node --import ./hack/lib/ts-resolve.ts hack/demo/controlplane.ts KUBECONFIG_OUT
// Writes the admin kubeconfig to KUBECONFIG_OUT, prints `READY <server>` and runs until SIGTERM or
// SIGINT, then stops kube-apiserver and etcd and removes their working directory.
import { copyFile } from 'node:fs/promises';
import { startControlPlane } from '../lib/harness/controlplane.js';

const out = process.argv[2];
if (!out) {
  console.error('usage: controlplane.ts KUBECONFIG_OUT');
  process.exit(2);
}

// Handlers first: a signal while the control plane is still starting stops it once started
// (startControlPlane cleans up after itself when it fails).
let cp: Awaited<ReturnType<typeof startControlPlane>> | undefined;
let stopping = false;
const stop = async (code: number) => {
  if (stopping) return;
  stopping = true;
  await cp?.stop();
  process.exit(code);
};
let signalled = false;
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.on(sig, () => {
    signalled = true;
    if (cp) void stop(0);
  });
}
try {
  cp = await startControlPlane();
} catch (err) {
  console.error(`control plane failed to start: ${(err as Error).message}`);
  process.exit(1);
}
if (signalled) await stop(0);

try {
  await cp.installCRDs();
  await copyFile(cp.kubeconfigPath, out);
} catch (err) {
  console.error(`control plane set-up failed: ${(err as Error).message}`);
  await stop(1);
}
console.log(`READY ${cp.server}`);
// Stay alive until a signal arrives.
setInterval(() => {}, 1 << 30);
