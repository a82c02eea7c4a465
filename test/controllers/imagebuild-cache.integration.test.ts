/**
 * The registry layer cache of ImageBuilds on a real kube-apiserver: `cache: {}` gives every build
 * Pod `--cache-from/--cache-to <output repository>/cache`, so the build of a changed Containerfile in
 * a fresh Pod (a new, empty layer store) reuses every unchanged step from the registry. Measured:
 * the builder's own count of steps run and taken from the cache, and wall time from the ImageBuild's
 * creation (or spec change) to Ready, cold against warm. The kubelet stand-in runs the Pods.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { API_VERSION, GROUP, VERSION } from '../../src/k8s/api/common.js';
import type { ImageBuild } from '../../src/k8s/api/imagebuild.js';
import { parseImageName } from '../../src/transports/index.js';
import { makeBusyboxImage } from '../../hack/lib/harness/images.js';
import { startControlPlane, type ControlPlane } from '../../hack/lib/harness/controlplane.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { cleanupCli, ensureBuilt } from '../cli/stevedore.js';
import { ok, waitFor } from './helpers.js';
import { startBuildRig, type BuildRig } from './imagebuild-rig.js';

const NS = 'cache';
const temps = new TempDirs();
let cp: ControlPlane;
let reg: TestRegistry;
let rig: BuildRig;
let base: string;

const buildsPath = (name?: string) => `/apis/${GROUP}/${VERSION}/namespaces/${NS}/imagebuilds${name ? `/${name}` : ''}`;
const getBuild = async (name: string) => (await ok(cp, 'GET', buildsPath(name))) as ImageBuild;
const ready = (b: ImageBuild) => b.status?.conditions?.find((c) => c.type === 'Ready');
const succeeded = (gen: number | undefined) => (b: ImageBuild) =>
  b.status?.observedGeneration === gen && ready(b)?.reason === 'Succeeded' && ready(b)?.observedGeneration === gen;

/** Two slow steps (a busy loop each, as a compile would be) and a last one the second build changes. */
const containerfile = (last: string) =>
  `FROM ${base}\n` +
  'RUN i=0; while [ $i -lt 150000 ]; do i=$((i+1)); done; echo one > /one\n' +
  'RUN i=0; while [ $i -lt 150000 ]; do i=$((i+1)); done; echo two > /two\n' +
  `RUN echo ${last} > /last\n`;

/** The builder's closing line in the build container's log: `(N steps run, M from cache, Ts)`. */
function stepCounts(pod: string): { run: number; cached: number } {
  const log = rig.kubelet.runs.find((r) => r.pod === pod && r.container === 'build')!.log;
  const m = /\((\d+) steps run, (\d+) from cache, [\d.]+s\)/.exec(log);
  if (!m) throw new Error(`no step counts in the log of ${pod}:\n${log}`);
  return { run: Number(m[1]), cached: Number(m[2]) };
}

beforeAll(async () => {
  [cp, reg] = await Promise.all([startControlPlane(), startRegistry({ name: 'imagebuild-cache' }), ensureBuilt()]);
  await cp.installCRDs();
  await cp.createNamespace(NS);
  const img = await makeBusyboxImage(await temps.make('busybox'), 'latest');
  base = `${reg.host}/base/busybox:1`;
  await copyReference(parseImageName(img.ociRef), parseImageName(`docker://${base}`), { destContext: { tlsVerify: false } });
  rig = await startBuildRig(cp, { namespace: NS, systemNamespace: 'stevedore-system', name: 'imagebuild-cache' });
}, 120_000);

afterAll(async () => {
  await rig?.stop();
  await Promise.all([cp?.stop(), reg?.stop()]);
  await temps.cleanup();
  await cleanupCli();
});

describe('ImageBuild spec.cache: a registry cache shared by fresh build Pods', () => {
  it('a changed Containerfile built in a fresh Pod reuses every unchanged step from <output>/cache', async () => {
    let t0 = Date.now();
    const created = (await ok(cp, 'POST', buildsPath(), {
      apiVersion: API_VERSION,
      kind: 'ImageBuild',
      metadata: { name: 'app' },
      spec: { source: { inline: { containerfile: containerfile('v1') } }, output: { image: `${reg.host}/team/app:1`, insecure: true }, cache: {} },
    })) as ImageBuild;
    const cold = await waitFor('cold build', () => getBuild('app'), succeeded(created.metadata.generation), 120_000);
    const coldMs = Date.now() - t0;

    // The Pod was told where the cache is, without the spec naming it.
    const pod = (await ok(cp, 'GET', `/api/v1/namespaces/${NS}/pods/${cold.status!.podName}`)) as V1Pod;
    const args = pod.spec!.containers[0]!.args!;
    expect(args.slice(args.indexOf('--cache-from'), args.indexOf('--cache-from') + 4)).toEqual([
      '--cache-from',
      `${reg.host}/team/app/cache`,
      '--cache-to',
      `${reg.host}/team/app/cache`,
    ]);
    const tags = (await (await fetch(`${reg.url}/v2/team/app/cache/tags/list`)).json()) as { tags?: string[] };
    expect(tags.tags?.length).toBeGreaterThanOrEqual(3);
    const coldSteps = stepCounts(cold.status!.podName!);
    expect(coldSteps.cached).toBe(0);

    // The source changes in its last step: a new generation, a new Pod with an empty layer store.
    t0 = Date.now();
    const patched = (await ok(
      cp,
      'PATCH',
      buildsPath('app'),
      { spec: { source: { inline: { containerfile: containerfile('v2') } } } },
      'application/merge-patch+json',
    )) as ImageBuild;
    const warm = await waitFor('warm build', () => getBuild('app'), succeeded(patched.metadata.generation), 120_000);
    const warmMs = Date.now() - t0;
    expect(warm.status!.podName).not.toBe(cold.status!.podName);
    const warmSteps = stepCounts(warm.status!.podName!);
    // Both slow RUN steps come from the registry cache; only the changed one runs.
    expect(warmSteps).toEqual({ run: 1, cached: coldSteps.run - 1 });
    expect(warm.status!.imageDigest).not.toBe(cold.status!.imageDigest);
    console.log(
      `registry cache figures: cold build ${coldSteps.run} steps run, ${coldSteps.cached} from cache, ${coldMs} ms; ` +
        `changed source in a fresh Pod ${warmSteps.run} run, ${warmSteps.cached} from cache, ${warmMs} ms`,
    );
    // The step counts above are the proof; the times are figures for the reader, not a bound (a
    // loaded CI machine makes wall times of two Pods incomparable).
  });
});
