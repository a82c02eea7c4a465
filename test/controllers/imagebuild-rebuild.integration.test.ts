/**
 * spec.rebuild.onBaseImageChange on a real kube-apiserver and a real registry: a build records the
 * digest its FROM image resolved to; pushing a new image under the same tag makes the controller
 * (polling with HEAD) start a second build, which records the new digest and pushes an image built
 * on the new base. The kubelet stand-in runs the build Pods.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basePollMs } from '../../src/controllers/imagebuild-bases.js';
import { copyReference } from '../../src/copy/copy.js';
import { API_VERSION, GROUP, VERSION } from '../../src/k8s/api/common.js';
import type { ImageBuild } from '../../src/k8s/api/imagebuild.js';
import { parseImageName } from '../../src/transports/index.js';
import { makeRandomImage } from '../../hack/lib/harness/images.js';
import { kubectlPath, startControlPlane, type ControlPlane } from '../../hack/lib/harness/controlplane.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { cleanupCli, ensureBuilt } from '../cli/stevedore.js';
import { ok, registryDigest, waitFor } from './helpers.js';
import { startBuildRig, type BuildRig } from './imagebuild-rig.js';

const NS = 'rebuild';
const temps = new TempDirs();
let cp: ControlPlane;
let reg: TestRegistry;
let rig: BuildRig;

const buildsPath = (name?: string) => `/apis/${GROUP}/${VERSION}/namespaces/${NS}/imagebuilds${name ? `/${name}` : ''}`;
const getBuild = async (name: string) => (await ok(cp, 'GET', buildsPath(name))) as ImageBuild;
const ready = (b: ImageBuild) => b.status?.conditions?.find((c) => c.type === 'Ready');

/** Pushes a new one-layer image under base/moving:1 and returns its digest. */
async function pushBase(seed: string): Promise<string> {
  const img = await makeRandomImage({ layers: 1, layerSize: 2048, seed, layoutDir: await temps.make(`base-${seed}`) });
  await copyReference(parseImageName(img.ociRef), parseImageName(`docker://${reg.host}/base/moving:1`), { destContext: { tlsVerify: false } });
  return (await registryDigest(reg.url, 'base/moving', '1'))!;
}

beforeAll(async () => {
  [cp, reg] = await Promise.all([startControlPlane(), startRegistry({ name: 'imagebuild-rebuild' }), ensureBuilt()]);
  await cp.installCRDs();
  await cp.createNamespace(NS);
  // The administrator lets this test's ImageBuilds poll every second (the default floor is 1m).
  rig = await startBuildRig(cp, { namespace: NS, systemNamespace: 'stevedore-system', name: 'imagebuild-rebuild', minBaseImagePollMs: 1_000 });
}, 120_000);

afterAll(async () => {
  await rig?.stop();
  await Promise.all([cp?.stop(), reg?.stop()]);
  await temps.cleanup();
  await cleanupCli();
});

describe('ImageBuild spec.rebuild.onBaseImageChange', () => {
  it('builds again when the FROM tag moves to a new digest, and records the base digest each build used', async () => {
    const first = await pushBase('one');
    const created = (await ok(cp, 'POST', buildsPath(), {
      apiVersion: API_VERSION,
      kind: 'ImageBuild',
      metadata: { name: 'app' },
      spec: {
        source: { inline: { containerfile: `ARG BASE=${reg.host}/base/moving:1\nFROM $BASE\nLABEL org.example.app=yes\n` } },
        output: { image: `${reg.host}/team/app:1`, insecure: true },
        rebuild: { onBaseImageChange: true, interval: '1s' },
      },
    })) as ImageBuild;
    const b1 = await waitFor(
      'first build',
      () => getBuild('app'),
      (b) => ready(b)?.reason === 'Succeeded' && b.status?.observedGeneration === created.metadata.generation,
      90_000,
    );
    expect(b1.status!.baseImages).toEqual([{ name: `${reg.host}/base/moving:1`, digest: first }]);
    const out1 = b1.status!.imageDigest!;

    // Polls that find nothing new start nothing.
    await new Promise((r) => setTimeout(r, 3_000));
    const still = await getBuild('app');
    expect(still.status!.podName).toBe(b1.status!.podName);
    expect(still.metadata.annotations?.['reconcile.stevedore.dev/requestedAt']).toBeUndefined();

    // The base moves under the same tag: a second build, same generation, a new Pod, the new digest.
    const second = await pushBase('two');
    expect(second).not.toBe(first);
    const b2 = await waitFor(
      'second build',
      () => getBuild('app'),
      (b) => ready(b)?.reason === 'Succeeded' && b.status?.podName !== b1.status!.podName && b.status?.baseImages?.[0]?.digest === second,
      90_000,
    );
    expect(b2.metadata.generation).toBe(created.metadata.generation);
    expect(b2.status!.podName).toMatch(/^app-build-1-[0-9a-f]{5}$/);
    expect(b2.status!.imageDigest).not.toBe(out1);
    expect(b2.status!.imageDigest).toBe(await registryDigest(reg.url, 'team/app', '1'));
    // The new image sits on the new base: its first layer is the new base's layer.
    const accept = { accept: 'application/vnd.oci.image.manifest.v1+json' };
    const baseLayer = ((await (await fetch(`${reg.url}/v2/base/moving/manifests/${second}`, { headers: accept })).json()) as { layers: { digest: string }[] })
      .layers[0]!.digest;
    const built = (await (await fetch(`${reg.url}/v2/team/app/manifests/1`, { headers: accept })).json()) as { layers: { digest: string }[] };
    expect(built.layers[0]!.digest).toBe(baseLayer);

    const events = (await ok(cp, 'GET', `/apis/events.k8s.io/v1/namespaces/${NS}/events`)) as {
      items: { reason: string; note: string; regarding: { name: string } }[];
    };
    expect(events.items.filter((e) => e.regarding.name === 'app' && e.reason === 'BaseImageChanged').map((e) => e.note)).toEqual([
      `${reg.host}/base/moving:1 moved from ${first} to ${second}: building again`,
    ]);
    const table = execFileSync(kubectlPath(), ['--kubeconfig', cp.kubeconfigPath, '-n', NS, 'get', 'imagebuild', 'app', '-o', 'wide'], { encoding: 'utf8' });
    expect(table).toMatch(/\bBASE\b/);
    expect(table).toContain(second);
    if (process.env.SHOW_KUBECTL) console.log(table);
  });

  it('a tenant cannot make the controller poll faster than the administrator allows', () => {
    const spec = {
      source: { inline: { containerfile: 'FROM x\n' } },
      output: { image: 'r.example/a:1' },
      rebuild: { onBaseImageChange: true, interval: '1s' },
    };
    expect(basePollMs(spec)).toBe(60_000);
    expect(basePollMs(spec, 1_000)).toBe(1_000);
    expect(basePollMs({ ...spec, rebuild: { onBaseImageChange: true } })).toBe(600_000);
  });
});
