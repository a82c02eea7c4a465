// `make demo` helper: the three kinds as one pipeline on the local control plane, printing each
// status as it turns Ready:
//   ImageBuild  default/hello  an inline Containerfile (FROM the demo's busybox, RUN, CMD), built in
//                              a build Pod and pushed to REGISTRY/built/hello:1
//   ImageMirror default/hello  REGISTRY/built/hello -> REGISTRY/mirrored/hello
//   ContainerRun default/hello the mirrored image, run by the node agent with runc
//
//   node --import ./hack/lib/ts-resolve.ts hack/demo/pipeline.ts KUBECONFIG REGISTRY WORKDIR
//
// There is no kubelet on a machine without a cluster, so build Pods are run by the TEST STAND-IN
// FOR THE KUBELET (hack/lib/harness/kubelet-standin.ts): it runs the Pod's containers as local
// processes (`node bin/stevedore.js ...`, as uid 65532 in a user namespace of their own when run as
// root) and writes Pod status and the termination message as a kubelet would. Everything else is
// real: the API server, `stevedore controller`, the builder, the registry, `stevedore agent` and runc.
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { sleep } from '../../src/util/sleep.js';
import { startKubeletStandIn } from '../lib/harness/kubelet-standin.js';
import { api, type Call } from './api.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The image name the controller puts in build Pods (`--build-image`); the stand-in maps it to bin/stevedore.js. */
export const DEMO_BUILD_IMAGE = 'stevedore.local/stevedore:demo';
const NS = 'default';
const GROUP_PATH = `/apis/stevedore.dev/v1alpha1/namespaces/${NS}`;

const [kubeconfig, registry, work] = process.argv.slice(2);
if (!kubeconfig || !registry || !work) {
  console.error('usage: pipeline.ts KUBECONFIG REGISTRY WORKDIR');
  process.exit(2);
}
const call: Call = api(kubeconfig);
const indent = (s: string) => s.trimEnd().replace(/^/gm, '    ');

async function apply(plural: string, kind: string, name: string, spec: unknown): Promise<void> {
  const obj = { apiVersion: 'stevedore.dev/v1alpha1', kind, metadata: { name, namespace: NS }, spec };
  const res = await call(
    'PATCH',
    `${GROUP_PATH}/${plural}/${name}?fieldManager=stevedore-demo&force=true`,
    { 'content-type': 'application/apply-patch+yaml' },
    JSON.stringify(obj),
  );
  if (res.status >= 300) throw new Error(`apply ${kind} ${name} failed (${res.status}): ${res.json?.message}`);
  console.log(indent(stringify({ kind, metadata: obj.metadata, spec })));
}

/** Polls until `done` says the object is finished; returns it, or exits with its status on failure or timeout. */
async function waitFor(plural: string, name: string, seconds: number, done: (o: any) => 'ok' | 'failed' | undefined): Promise<any> {
  const deadline = Date.now() + seconds * 1000;
  let last: any;
  let shown = '';
  for (;;) {
    last = (await call('GET', `${GROUP_PATH}/${plural}/${name}`)).json;
    const ready = (last?.status?.conditions ?? []).find((c: any) => c.type === 'Ready');
    const line = `${last?.status?.phase ?? ''} ${ready?.reason ?? ''}`.trim();
    if (line && line !== shown) {
      console.log(`    ... ${plural}/${name}: ${line}`);
      shown = line;
    }
    const verdict = done(last);
    if (verdict === 'ok') return last;
    if (verdict === 'failed' || Date.now() > deadline) {
      console.error(`${plural}/${name} ${verdict === 'failed' ? 'failed' : 'did not finish in time'}; status:`);
      console.error(indent(stringify(last?.status ?? {})));
      process.exit(1);
    }
    await sleep(250);
  }
}

const readyOf = (o: any) => (o?.status?.conditions ?? []).find((c: any) => c.type === 'Ready');
const current = (o: any) => readyOf(o)?.observedGeneration === o?.metadata?.generation;

// Build Pods' processes get an empty auth file (the registry is anonymous) and the demo's PATH.
const authFile = join(work, 'standin-auth.json');
await writeFile(authFile, '{"auths":{}}');
const kc = new KubeConfig();
kc.loadFromFile(kubeconfig);
const kubelet = await startKubeletStandIn({
  kubeConfig: kc,
  namespace: NS,
  entrypoints: { [DEMO_BUILD_IMAGE]: [process.execPath, join(REPO, 'bin', 'stevedore.js')] },
  env: { PATH: process.env.PATH, REGISTRY_AUTH_FILE: authFile },
});

try {
  console.log('==> ImageBuild default/hello: an inline Containerfile, built in a build Pod and pushed');
  await apply('imagebuilds', 'ImageBuild', 'hello', {
    source: {
      inline: {
        containerfile: [
          `FROM ${registry}/demo/busybox:1.0`,
          'RUN echo "hello from an image Stevedore built, mirrored and ran ($(uname -m))" > /hello.txt',
          'CMD ["cat", "/hello.txt"]',
          '',
        ].join('\n'),
      },
    },
    output: { image: `${registry}/built/hello:1`, insecure: true },
  });
  const build = await waitFor('imagebuilds', 'hello', 180, (o) => {
    if (!current(o)) return undefined;
    const r = readyOf(o);
    if (r?.status === 'True') return 'ok';
    return ['Failed', 'DeadlineExceeded', 'Canceled'].includes(r?.reason) ? 'failed' : undefined;
  });
  console.log(`    Ready=True ${readyOf(build).reason}: ${build.status.image}@${build.status.imageDigest} (${build.status.imageSize} bytes)`);

  console.log('==> ImageMirror default/hello: built/hello -> mirrored/hello');
  await apply('imagemirrors', 'ImageMirror', 'hello', {
    source: { registry: { repository: `${registry}/built/hello`, insecure: true } },
    destination: { registry: { repository: `${registry}/mirrored/hello`, insecure: true } },
    tags: { list: ['1'] },
    schedule: { interval: '1m' },
  });
  const mirror = await waitFor('imagemirrors', 'hello', 60, (o) => {
    if (!current(o)) return undefined;
    const r = readyOf(o);
    if (r?.status === 'True') return 'ok';
    return r?.status === 'False' && r?.reason !== 'Progressing' && (o.status?.conditions ?? []).some((c: any) => c.type === 'Stalled' && c.status === 'True')
      ? 'failed'
      : undefined;
  });
  console.log(`    Ready=True ${readyOf(mirror).reason}: ${readyOf(mirror).message ?? ''}`);

  console.log('==> ContainerRun default/hello: the mirrored image, run by the node agent with runc');
  await apply('containerruns', 'ContainerRun', 'hello', { image: `${registry}/mirrored/hello:1`, timeout: '2m' });
  const run = await waitFor('containerruns', 'hello', 120, (o) => {
    const phase = o?.status?.phase;
    if (phase === 'Succeeded') return 'ok';
    return phase === 'Failed' ? 'failed' : undefined;
  });
  console.log(`    ${run.status.phase} on node ${run.status.nodeName}, exit code ${run.status.exitCode}, image ${run.status.imageDigest}`);
  console.log('    output:');
  console.log(indent(indent(run.status.logTail ?? '')));
} finally {
  await kubelet.stop();
}
