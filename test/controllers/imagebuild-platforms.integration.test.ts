/**
 * Native multi-platform ImageBuilds on a real kube-apiserver: with Ready Node objects labelled
 * kubernetes.io/arch=amd64 and =arm64, `platforms: [linux/amd64, linux/arm64]` runs one build Pod
 * per platform, each selecting a node of its architecture, and the controller writes the index
 * when both have pushed; with no usable arm64 node, one Pod builds both (today's emulated build).
 * The kubelet stand-in runs the Pods (the real `stevedore build`); the Containerfiles have no RUN
 * step, so an arm64 build needs no emulation on this amd64 machine.
 */
import { execFileSync } from 'node:child_process';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { API_VERSION, GROUP, VERSION } from '../../src/k8s/api/common.js';
import type { ImageBuild } from '../../src/k8s/api/imagebuild.js';
import { parseImageName } from '../../src/transports/index.js';
import { makeIndex } from '../../hack/lib/harness/images.js';
import { kubectlPath, startControlPlane, type ControlPlane } from '../../hack/lib/harness/controlplane.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { cleanupCli, ensureBuilt } from '../cli/stevedore.js';
import { ok, registryDigest, waitFor } from './helpers.js';
import { startBuildRig, type BuildRig } from './imagebuild-rig.js';

const NS = 'platforms';
const SYSTEM_NS = 'stevedore-system';
const temps = new TempDirs();
let cp: ControlPlane;
let reg: TestRegistry;
let rig: BuildRig;
let base: string;
let amd64Only: string;
/** A registry with no image, which answers for images named *amd64* only after 15 s: one platform is slow, the other fails at once. */
let stuck: Server;
let stuckHost: string;
const held: ServerResponse[] = [];

const buildsPath = (name?: string) => `/apis/${GROUP}/${VERSION}/namespaces/${NS}/imagebuilds${name ? `/${name}` : ''}`;
const getBuild = async (name: string) => (await ok(cp, 'GET', buildsPath(name))) as ImageBuild;
const create = (name: string, spec: ImageBuild['spec']) =>
  ok(cp, 'POST', buildsPath(), { apiVersion: API_VERSION, kind: 'ImageBuild', metadata: { name }, spec }) as Promise<ImageBuild>;
const ready = (b: ImageBuild | undefined) => b?.status?.conditions?.find((c) => c.type === 'Ready');
const finished = (gen: number | undefined) => (b: ImageBuild) =>
  b.status?.observedGeneration === gen && ['Succeeded', 'Failed', 'Canceled'].includes(ready(b)?.reason ?? '') && ready(b)?.observedGeneration === gen;
const pods = async () => ((await ok(cp, 'GET', `/api/v1/namespaces/${NS}/pods`)) as { items: V1Pod[] }).items;
const manifest = async (repo: string, ref: string) =>
  (await (
    await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, {
      headers: {
        accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
      },
    })
  ).json()) as { mediaType: string; config?: { digest: string }; manifests?: { digest: string; platform: { os: string; architecture: string } }[] };

/** A Node object as a kubelet would register it, with its Ready condition (no kubelet behind it). */
async function node(name: string, arch: string, o: { ready?: boolean; taints?: object[] } = {}) {
  await ok(cp, 'POST', '/api/v1/nodes', {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': arch, 'kubernetes.io/hostname': name } },
  });
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  await ok(
    cp,
    'PATCH',
    `/api/v1/nodes/${name}/status`,
    {
      status: {
        conditions: [
          {
            type: 'Ready',
            status: o.ready === false ? 'False' : 'True',
            reason: 'KubeletReady',
            message: 'test node',
            lastHeartbeatTime: now,
            lastTransitionTime: now,
          },
        ],
      },
    },
    'application/merge-patch+json',
  );
  // The API server taints a new Node not-ready (TaintNodesByCondition); the node lifecycle
  // controller, which this test does not run, lifts it once the node reports Ready.
  await ok(cp, 'PATCH', `/api/v1/nodes/${name}`, { spec: { taints: o.ready === false ? undefined : (o.taints ?? null) } }, 'application/merge-patch+json');
}

beforeAll(async () => {
  [cp, reg] = await Promise.all([startControlPlane(), startRegistry({ name: 'imagebuild-platforms' }), ensureBuilt()]);
  await cp.installCRDs();
  await cp.createNamespace(NS);
  // A multi-arch base (amd64 and arm64 children) and an amd64-only one.
  const idx = await makeIndex(await temps.make('base'), 'latest', ['linux/amd64', 'linux/arm64'], { seed: 'platforms-base' });
  base = `${reg.host}/base/multi:1`;
  await copyReference(parseImageName(idx.ociRef), parseImageName(`docker://${base}`), { all: true, destContext: { tlsVerify: false } });
  const one = await makeIndex(await temps.make('amd64-only'), 'latest', ['linux/amd64'], { seed: 'amd64-only' });
  amd64Only = `${reg.host}/base/amd64-only:1`;
  await copyReference(parseImageName(one.ociRef), parseImageName(`docker://${amd64Only}`), { all: true, destContext: { tlsVerify: false } });
  await node('node-amd64', 'amd64');
  await node('node-arm64', 'arm64');
  stuck = createServer((req, res) => {
    if (req.url === '/v2/' || req.url === '/v2') return res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    const notFound = () =>
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
    if (req.url?.includes('amd64')) {
      held.push(res);
      return void setTimeout(() => !res.destroyed && notFound(), 15_000);
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
  });
  await new Promise<void>((r) => stuck.listen(0, '127.0.0.1', r));
  stuckHost = `127.0.0.1:${(stuck.address() as { port: number }).port}`;
  rig = await startBuildRig(cp, { namespace: NS, systemNamespace: SYSTEM_NS, name: 'imagebuild-platforms' });
}, 120_000);

afterAll(async () => {
  await rig?.stop();
  for (const r of held) r.destroy();
  stuck?.closeAllConnections();
  stuck?.close();
  await Promise.all([cp?.stop(), reg?.stop()]);
  await temps.cleanup();
  await cleanupCli();
});

describe('ImageBuild: one build Pod per platform on nodes of that architecture', () => {
  it('builds linux/amd64 and linux/arm64 natively in two Pods, each on its architecture, and pushes their index', async () => {
    const created = await create('native', {
      source: { inline: { containerfile: `FROM ${base}\nLABEL org.example.native=yes\nENV BUILT=native\n` } },
      platforms: ['linux/amd64', 'linux/arm64'],
      output: { image: `${reg.host}/out/native:1`, insecure: true },
    });
    const b = await waitFor('native build', () => getBuild('native'), finished(created.metadata.generation), 90_000);
    expect(ready(b), JSON.stringify(b.status)).toMatchObject({ status: 'True', reason: 'Succeeded' });
    expect(ready(b)!.message).toContain('natively in 2 Pods');

    // One Pod per platform, each selecting nodes of its architecture, part of this build.
    const mine = (await pods()).filter((p) => p.metadata?.annotations?.['stevedore.dev/build'] === 'native-build-1');
    expect(mine.map((p) => [p.metadata!.name, p.spec!.nodeSelector, p.status!.phase]).sort()).toEqual([
      ['native-build-1-linux-amd64', { 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64' }, 'Succeeded'],
      ['native-build-1-linux-arm64', { 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'arm64' }, 'Succeeded'],
    ]);
    expect(
      rig.kubelet.runs
        .filter((r) => r.container === 'build' && r.pod.startsWith('native-'))
        .map((r) => r.pod)
        .sort(),
    ).toEqual(['native-build-1-linux-amd64', 'native-build-1-linux-arm64']);

    // The index under the output tag names exactly the two per-platform images the Pods pushed.
    expect(b.status!.imageDigest).toBe(await registryDigest(reg.url, 'out/native', '1'));
    const index = await manifest('out/native', '1');
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    const listed = index.manifests!.map((m) => ({ platform: `${m.platform.os}/${m.platform.architecture}`, digest: m.digest }));
    expect(listed).toEqual([
      { platform: 'linux/amd64', digest: await registryDigest(reg.url, 'out/native', '1-linux-amd64') },
      { platform: 'linux/arm64', digest: await registryDigest(reg.url, 'out/native', '1-linux-arm64') },
    ]);
    expect(b.status!.platforms).toEqual([
      { platform: 'linux/amd64', digest: listed[0]!.digest, podName: 'native-build-1-linux-amd64' },
      { platform: 'linux/arm64', digest: listed[1]!.digest, podName: 'native-build-1-linux-arm64' },
    ]);
    // The arm64 image is an arm64 image (its config), built on the arm64 base child.
    const arm = await manifest('out/native', listed[1]!.digest);
    const config = (await (await fetch(`${reg.url}/v2/out/native/blobs/${arm.config!.digest}`)).json()) as { architecture: string; config: { Env?: string[] } };
    expect(config.architecture).toBe('arm64');
    expect(config.config.Env).toContain('BUILT=native');

    // What a user sees: kubectl get -o wide lists the platforms and their Pods.
    const table = execFileSync(kubectlPath(), ['--kubeconfig', cp.kubeconfigPath, '-n', NS, 'get', 'imagebuild', 'native', '-o', 'wide'], { encoding: 'utf8' });
    expect(table).toMatch(/\bPLATFORMS\n/);
    expect(table).toMatch(/native: linux\/amd64, linux\/arm64\n/);
    expect(table).toContain(b.status!.imageDigest!);
    const kubectl = (...args: string[]) => execFileSync(kubectlPath(), ['--kubeconfig', cp.kubeconfigPath, '-n', NS, ...args], { encoding: 'utf8' });
    const perPlatform = kubectl(
      'get',
      'imagebuild',
      'native',
      '-o',
      'jsonpath={range .status.platforms[*]}{.platform}{"\\t"}{.digest}{"\\t"}{.podName}{"\\n"}{end}',
    );
    expect(perPlatform).toBe(b.status!.platforms!.map((p) => `${p.platform}\t${p.digest}\t${p.podName}\n`).join(''));
    const placed = kubectl(
      'get',
      'pods',
      '-l',
      'stevedore.dev/imagebuild=native',
      '-o',
      'custom-columns=NAME:.metadata.name,ARCH:.spec.nodeSelector.kubernetes\\.io/arch,PHASE:.status.phase',
    );
    expect(
      placed
        .split('\n')
        .slice(1, 3)
        .map((l) => l.split(/\s+/)),
    ).toEqual([
      ['native-build-1-linux-amd64', 'amd64', 'Succeeded'],
      ['native-build-1-linux-arm64', 'arm64', 'Succeeded'],
    ]);
    if (process.env.SHOW_KUBECTL) console.log(`${table}\n${perPlatform}\n${placed}`);
  });

  it('fails the build naming the platform and its Pod when one platform cannot build, and writes no index', async () => {
    const created = await create('half', {
      source: { inline: { containerfile: `FROM ${amd64Only}\nLABEL x=y\n` } },
      platforms: ['linux/amd64', 'linux/arm64'],
      output: { image: `${reg.host}/out/half:1`, insecure: true },
    });
    const b = await waitFor('half build', () => getBuild('half'), finished(created.metadata.generation), 90_000);
    expect(ready(b)).toMatchObject({ status: 'False', reason: 'Failed' });
    expect(b.status!.failureDetails!.message).toMatch(/^linux\/arm64 \(Pod half-build-1-linux-arm64\): /);
    expect(b.status!.platforms!.map((p) => p.podName)).toEqual(['half-build-1-linux-amd64', 'half-build-1-linux-arm64']);
    expect(b.status!.imageDigest).toBeUndefined();
    // Whether the amd64 Pod pushed its image before the arm64 failure had it deleted depends on
    // timing (the next test pins the deletion); either way nothing is written under the output tag.
    expect(await registryDigest(reg.url, 'out/half', '1')).toBeUndefined();
  });

  it('deletes the Pods of the other platforms when one platform fails, and the build says which', async () => {
    const created = await create('stopped', {
      source: { inline: { containerfile: `ARG TARGETARCH\nFROM ${stuckHost}/img-$TARGETARCH:1\nLABEL x=y\n` } },
      platforms: ['linux/amd64', 'linux/arm64'],
      output: { image: `${reg.host}/out/stopped:1`, insecure: true },
    });
    const b = await waitFor('stopped build', () => getBuild('stopped'), finished(created.metadata.generation), 90_000);
    expect(ready(b)).toMatchObject({ status: 'False', reason: 'Failed' });
    expect(b.status!.failureDetails!.message).toMatch(/^linux\/arm64 \(Pod stopped-build-1-linux-arm64\): .*img-arm64/);
    // The amd64 Pod, still waiting for its base, was deleted by the controller when arm64 failed.
    const failedAt = Date.parse(b.status!.completionTime!);
    const amd = (await pods()).find((p) => p.metadata!.name === 'stopped-build-1-linux-amd64');
    expect(amd === undefined || amd.metadata!.deletionTimestamp !== undefined, JSON.stringify(amd?.status)).toBe(true);
    expect(held.length).toBeGreaterThan(0);
    expect(Date.now() - failedAt).toBeLessThan(15_000);
    await waitFor(
      'amd64 Pod gone',
      async () => (await pods()).map((p) => p.metadata!.name),
      (names) => !names.includes('stopped-build-1-linux-amd64'),
      40_000,
    );
  });

  it('builds every platform in one Pod (emulation) when the only arm64 node is tainted against the build, and says why', async () => {
    // A tenant's ImageBuild cannot reach a node its tolerations do not allow: the arm64 node is
    // tainted, so no Pod may go there and the build falls back to one unpinned Pod.
    await ok(
      cp,
      'PATCH',
      '/api/v1/nodes/node-arm64',
      { spec: { taints: [{ key: 'example.com/reserved', value: 'gpu', effect: 'NoSchedule' }] } },
      'application/merge-patch+json',
    );
    try {
      const created = await create('fallback', {
        source: { inline: { containerfile: `FROM ${base}\nLABEL org.example.fallback=yes\n` } },
        platforms: ['linux/amd64', 'linux/arm64'],
        output: { image: `${reg.host}/out/fallback:1`, insecure: true },
      });
      const b = await waitFor('fallback build', () => getBuild('fallback'), finished(created.metadata.generation), 90_000);
      expect(ready(b), JSON.stringify(b.status)).toMatchObject({ status: 'True', reason: 'Succeeded' });
      expect(b.status!.podName).toBe('fallback-build-1');
      const mine = (await pods()).filter((p) => p.metadata?.labels?.['stevedore.dev/imagebuild'] === 'fallback');
      expect(mine.map((p) => [p.metadata!.name, p.spec!.nodeSelector ?? {}])).toEqual([['fallback-build-1', {}]]);
      expect(mine[0]!.spec!.containers[0]!.args).toContain('linux/amd64,linux/arm64');
      expect(b.status!.platforms!.map((p) => p.platform).sort()).toEqual(['linux/amd64', 'linux/arm64/v8']);
      if (process.env.SHOW_KUBECTL)
        console.log(
          execFileSync(kubectlPath(), ['--kubeconfig', cp.kubeconfigPath, '-n', NS, 'get', 'imagebuild', 'fallback', '-o', 'wide'], { encoding: 'utf8' }),
        );
      expect(b.status!.platformBuild).toBe('emulated in one Pod: linux/amd64, linux/arm64 (no Ready node for linux/arm64)');
      expect(b.status!.platforms!.every((p) => p.podName === undefined)).toBe(true);
      const events = (await ok(cp, 'GET', `/apis/events.k8s.io/v1/namespaces/${NS}/events`)) as {
        items: { reason: string; note: string; regarding: { name: string } }[];
      };
      expect(events.items.find((e) => e.regarding.name === 'fallback' && e.reason === 'Building')!.note).toBe(
        'created build Pod fallback-build-1 for linux/amd64, linux/arm64 (no Ready node for linux/arm64: emulated)',
      );
    } finally {
      await ok(cp, 'PATCH', '/api/v1/nodes/node-arm64', { spec: { taints: null } }, 'application/merge-patch+json');
    }
  });
});
