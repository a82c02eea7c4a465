/**
 * ImageBuild's native multi-platform fan-out and base-image rebuild on the real node (called from
 * chart.test.ts, which has the node, the helm-installed chart and the controller).
 *
 * The fan-out on one amd64 kubelet: the controller fans out only when every platform has a Ready,
 * schedulable node of its architecture, and the scheduler then places each platform's Pod by its
 * `kubernetes.io/arch` selector. The test lends the platform arm64 a node in two steps:
 * 1. A Node object `e2e-arm64` (os linux, arch arm64, Ready, untainted) that can hold no Pod
 *    (allocatable pods 0): the controller counts it, so the build fans out, and the scheduler leaves
 *    the arm64 Pod Pending ("Too many pods") while the real kubelet builds amd64.
 * 2. Once amd64 is pushed, that Node goes and the real node is labelled arch=arm64 until the
 *    kubelet has admitted the arm64 Pod (timed against the kubelet's own label reset: see
 *    asArm64Until); the scheduler binds the Pod to the real node and the real kubelet builds
 *    arm64. The Containerfile has no RUN step: nothing needs emulation.
 */
import { expect } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { parseImageName } from '../../src/transports/index.js';
import { makeIndex } from '../../hack/lib/harness/images.js';
import type { LocalNode } from '../../hack/lib/harness/node.js';
import type { TempDirs } from '../../hack/lib/harness/tmp.js';
import { condition, getJson, poll, type Condition } from './lib.js';

export interface Ctx {
  node: LocalNode;
  ns: string;
  temps: TempDirs;
  explain: () => Promise<string>;
  show: (title: string, text: string) => void;
  timings: Record<string, number>;
}

type IB = {
  metadata: { generation: number };
  status?: {
    conditions?: Condition[];
    imageDigest?: string;
    podName?: string;
    platformBuild?: string;
    platforms?: { platform: string; digest?: string; podName?: string }[];
    baseImages?: { name: string; digest: string }[];
  };
};
type Pod = {
  metadata: { name: string };
  spec: { nodeName?: string; nodeSelector?: Record<string, string> };
  status: {
    phase: string;
    conditions?: Condition[];
    initContainerStatuses?: { state?: Record<string, unknown> }[];
    containerStatuses?: { state?: Record<string, unknown> }[];
  };
};

const ARCH = 'kubernetes.io/arch';
const FAKE_ARM64 = 'e2e-arm64';

async function push(ctx: Ctx, name: string, platforms: string[], seed: string): Promise<{ ref: string; digest: string }> {
  const idx = await makeIndex(await ctx.temps.make(seed), 'latest', platforms, { seed });
  const ref = `${ctx.node.registry.host}/e2e/${name}`;
  await copyReference(parseImageName(idx.ociRef), parseImageName(`docker://${ref}`), { all: true, destContext: { tlsVerify: false } });
  const res = await fetch(`http://${ctx.node.registry.host}/v2/e2e/${name.replace(':', '/manifests/')}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.oci.image.index.v1+json' },
  });
  return { ref, digest: res.headers.get('docker-content-digest')! };
}

async function registryIndex(ctx: Ctx, repo: string, ref: string) {
  const res = await fetch(`http://${ctx.node.registry.host}/v2/${repo}/manifests/${ref}`, {
    headers: { accept: 'application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json' },
  });
  return (await res.json()) as { manifests: { digest: string; platform: { os: string; architecture: string } }[] };
}

/** A Ready, untainted Node object of arch arm64 with room for no Pod (no kubelet behind it). */
async function lendArm64Node(ctx: Ctx): Promise<void> {
  const { node } = ctx;
  await node.kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: FAKE_ARM64, labels: { 'kubernetes.io/os': 'linux', [ARCH]: 'arm64', 'kubernetes.io/hostname': FAKE_ARM64 } },
    }),
  });
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const room = { pods: '0', cpu: '1', memory: '1Gi' };
  await node.kubectl([
    'patch',
    'node',
    FAKE_ARM64,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify({
      status: {
        capacity: room,
        allocatable: room,
        conditions: [
          { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'e2e: a node that holds no Pod', lastHeartbeatTime: now, lastTransitionTime: now },
        ],
      },
    }),
  ]);
  // The API server taints a new Node not-ready; the node lifecycle controller lifts it for a Ready
  // node, but not before its first pass: lift it now.
  await node.kubectl(['patch', 'node', FAKE_ARM64, '--type=merge', '-p', JSON.stringify({ spec: { taints: null } })]);
}

/**
 * Labels the real node arm64 until `admitted` says the kubelet has taken the Pod; then gives it its
 * own label back. The kubelet resets its arch label on its status sync (every ~10 s): were that to
 * happen between the scheduler's binding and the kubelet's admission, the kubelet would reject the
 * Pod (node affinity). So the node is cordoned while the label is set once and the kubelet's next
 * reset is awaited; the label set again right after it and the node uncordoned, the Pod is bound
 * and admitted well inside the ~10 s until the next reset. The loop still sets the label again
 * whenever it finds it reset.
 */
async function asArm64Until(ctx: Ctx, admitted: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const { node } = ctx;
  const until = Date.now() + timeoutMs;
  const arch = async () => (await getJson<{ metadata: { labels: Record<string, string> } }>(node, ['node', node.nodeName]))!.metadata.labels[ARCH];
  const label = (value: string) => node.kubectl(['label', 'node', node.nodeName, `${ARCH}=${value}`, '--overwrite']);
  await node.kubectl(['cordon', node.nodeName]);
  try {
    await label('arm64');
    // The kubelet's reset (if it resets at all: then there is no race to avoid), within one sync period.
    const resetBy = Date.now() + 15_000;
    while (Date.now() < resetBy && (await arch()) === 'arm64') await new Promise((r) => setTimeout(r, 100));
    await label('arm64');
    await node.kubectl(['uncordon', node.nodeName]);
    for (;;) {
      if ((await arch()) !== 'arm64') await label('arm64');
      if (await admitted()) return;
      if (Date.now() > until) throw new Error(`the arm64 Pod was not admitted within ${timeoutMs} ms\n${await ctx.explain()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await node.kubectl(['uncordon', node.nodeName]).catch(() => undefined);
    await label('amd64');
  }
}

const started = (p: Pod | undefined) =>
  !!p &&
  (p.status.phase !== 'Pending' ||
    [...(p.status.initContainerStatuses ?? []), ...(p.status.containerStatuses ?? [])].some((s) => s.state?.['running'] || s.state?.['terminated']));

export async function nativeFanOut(ctx: Ctx): Promise<void> {
  const { node, ns } = ctx;
  const base = await push(ctx, 'multi:1', ['linux/amd64', 'linux/arm64'], 'e2e-native-base');
  const out = `${node.registry.host}/e2e/native:1`;
  await lendArm64Node(ctx);
  let lent = true;
  try {
    const s = Date.now();
    await node.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'stevedore.dev/v1alpha1',
        kind: 'ImageBuild',
        metadata: { name: 'native', namespace: ns },
        spec: {
          source: { inline: { containerfile: `FROM ${base.ref}\nARG TARGETARCH\nLABEL e2e.arch=$TARGETARCH\n` } },
          platforms: ['linux/amd64', 'linux/arm64'],
          output: { image: out, insecure: true },
          timeout: '10m',
        },
      }),
    });
    const amd = 'native-build-1-linux-amd64';
    const arm = 'native-build-1-linux-arm64';
    // amd64 builds on the real node; arm64 waits for a node with room.
    const amdPod = await poll(
      'the amd64 Pod Succeeded',
      () => getJson<Pod>(node, ['pod', '-n', ns, amd]),
      (p) => p?.status.phase === 'Succeeded' || p?.status.phase === 'Failed',
      300_000,
      ctx.explain,
    );
    expect(amdPod!.status.phase).toBe('Succeeded');
    const waiting = (await getJson<Pod>(node, ['pod', '-n', ns, arm]))!;
    expect(waiting.spec.nodeName).toBeUndefined();
    expect(waiting.status.conditions?.find((c) => c.type === 'PodScheduled')).toMatchObject({ status: 'False', reason: 'Unschedulable' });
    ctx.show(
      `kubectl get pods -n ${ns} -l stevedore.dev/imagebuild=native (arm64 waits for a node)`,
      await node.kubectl([
        'get',
        'pods',
        '-n',
        ns,
        '-l',
        'stevedore.dev/imagebuild=native',
        '-o',
        'custom-columns=NAME:.metadata.name,ARCH:.spec.nodeSelector.kubernetes\\.io/arch,NODE:.spec.nodeName,PHASE:.status.phase',
      ]),
    );

    await node.kubectl(['delete', 'node', FAKE_ARM64, '--wait=true']);
    lent = false;
    await asArm64Until(ctx, async () => started(await getJson<Pod>(node, ['pod', '-n', ns, arm])), 120_000);

    const ib = await poll(
      'ImageBuild native Ready',
      () => getJson<IB>(node, ['imagebuild', '-n', ns, 'native']),
      (v) => condition(v)?.status === 'True' || condition(v, 'Stalled')?.status === 'True' || condition(v)?.reason === 'Failed',
      300_000,
      ctx.explain,
    );
    ctx.timings['nativeFanOut'] = Date.now() - s;
    expect(condition(ib), JSON.stringify(ib?.status)).toMatchObject({ status: 'True', reason: 'Succeeded' });
    const st = ib!.status!;
    expect(st.platformBuild).toBe('native: linux/amd64, linux/arm64');
    expect(st.platforms!.map((p) => [p.platform, p.podName])).toEqual([
      ['linux/amd64', amd],
      ['linux/arm64', arm],
    ]);
    for (const p of st.platforms!) expect(p.digest).toMatch(/^sha256:[0-9a-f]{64}$/);

    // Both Pods ran on the real kubelet, each selecting its architecture.
    for (const [name, arch] of [
      [amd, 'amd64'],
      [arm, 'arm64'],
    ] as const) {
      // The controller reads the result from the terminated build container; the Pod's phase follows.
      const pod = (await poll(
        `Pod ${name} finished`,
        () => getJson<Pod>(node, ['pod', '-n', ns, name]),
        (p) => p?.status.phase === 'Succeeded' || p?.status.phase === 'Failed',
        30_000,
        ctx.explain,
      ))!;
      expect(pod.spec.nodeSelector?.[ARCH]).toBe(arch);
      expect(pod.spec.nodeName).toBe(node.nodeName);
      expect(pod.status.phase).toBe('Succeeded');
    }
    // The index under the output tag lists exactly the two pushed images.
    const index = await registryIndex(ctx, 'e2e/native', '1');
    expect(index.manifests.map((m) => [`${m.platform.os}/${m.platform.architecture}`, m.digest]).sort()).toEqual(
      st.platforms!.map((p) => [p.platform, p.digest]).sort(),
    );
    const head = await fetch(`http://${node.registry.host}/v2/e2e/native/manifests/1`, {
      method: 'HEAD',
      headers: { accept: 'application/vnd.oci.image.index.v1+json' },
    });
    expect(head.headers.get('docker-content-digest')).toBe(st.imageDigest);

    // As a user sees it.
    const wide = await node.kubectl(['get', 'imagebuild', '-n', ns, 'native', '-o', 'wide']);
    ctx.show(`kubectl get imagebuild -n ${ns} native -o wide`, wide);
    const [header, row] = wide.trim().split('\n');
    expect(header).toMatch(/^NAME\s+READY\s+REASON\s+DIGEST\s+AGE\s+IMAGE\s+COMMIT\s+BASE\s+PLATFORMS$/);
    // The builder in the image reports the digest its FROM tag resolved to (baseImages): BASE shows it.
    const baseDigest = st.baseImages?.[0]?.digest;
    expect(baseDigest, 'status.baseImages of the native build').toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(row).toMatch(
      new RegExp(
        `^native\\s+True\\s+Succeeded\\s+${st.imageDigest}\\s+\\S+\\s+${out.replace(/[.]/g, '\\.')}\\s+${baseDigest}\\s+native: linux/amd64, linux/arm64$`,
      ),
    );
    const perPlatform = await node.kubectl([
      'get',
      'imagebuild',
      '-n',
      ns,
      'native',
      '-o',
      'jsonpath={range .status.platforms[*]}{.platform}{"\\t"}{.digest}{"\\t"}{.podName}{"\\n"}{end}',
    ]);
    ctx.show(`kubectl get imagebuild -n ${ns} native -o jsonpath='{range .status.platforms[*]}...'`, perPlatform);
    expect(perPlatform.trim().split('\n')).toEqual(st.platforms!.map((p) => `${p.platform}\t${p.digest}\t${p.podName}`));
    ctx.show(
      `kubectl get pods -n ${ns} -l stevedore.dev/imagebuild=native -o wide`,
      await node.kubectl([
        'get',
        'pods',
        '-n',
        ns,
        '-l',
        'stevedore.dev/imagebuild=native',
        '-o',
        'custom-columns=NAME:.metadata.name,ARCH:.spec.nodeSelector.kubernetes\\.io/arch,NODE:.spec.nodeName,PHASE:.status.phase',
      ]),
    );
  } finally {
    if (lent) await node.kubectl(['delete', 'node', FAKE_ARM64, '--ignore-not-found', '--wait=true']).catch(() => undefined);
  }
}

/**
 * spec.rebuild.onBaseImageChange with an inline Containerfile: the base tag is pushed again with
 * new content, and the controller's poll (the chart's buildPods.minBaseImagePollInterval lets the
 * test use 2s) starts a second build Pod that records the new digest.
 */
export async function baseImageRebuild(ctx: Ctx): Promise<void> {
  const { node, ns } = ctx;
  const v1 = await push(ctx, 'moving:1', ['linux/amd64'], 'e2e-moving-1');
  await node.kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'stevedore.dev/v1alpha1',
      kind: 'ImageBuild',
      metadata: { name: 'moving', namespace: ns },
      spec: {
        source: { inline: { containerfile: `ARG BASE=${v1.ref}\nFROM $BASE\nLABEL e2e.rebuild=yes\n` } },
        output: { image: `${node.registry.host}/e2e/rebuilt:1`, insecure: true },
        rebuild: { onBaseImageChange: true, interval: '2s' },
        timeout: '10m',
      },
    }),
  });
  const first = await poll(
    'ImageBuild moving Ready',
    () => getJson<IB>(node, ['imagebuild', '-n', ns, 'moving']),
    (v) => condition(v)?.status === 'True' || condition(v, 'Stalled')?.status === 'True' || condition(v)?.reason === 'Failed',
    300_000,
    ctx.explain,
  );
  expect(condition(first), JSON.stringify(first?.status)).toMatchObject({ status: 'True', reason: 'Succeeded' });
  expect(first!.status!.baseImages).toEqual([{ name: v1.ref, digest: v1.digest }]);
  ctx.show(`kubectl get imagebuild -n ${ns} moving -o wide (first build)`, await node.kubectl(['get', 'imagebuild', '-n', ns, 'moving', '-o', 'wide']));

  const s = Date.now();
  const v2 = await push(ctx, 'moving:1', ['linux/amd64'], 'e2e-moving-2');
  expect(v2.digest).not.toBe(v1.digest);
  const second = await poll(
    'the rebuild on the new base Ready',
    () => getJson<IB>(node, ['imagebuild', '-n', ns, 'moving']),
    (v) =>
      (v?.status?.baseImages?.[0]?.digest === v2.digest && condition(v)?.status === 'True' && v.status.podName !== first!.status!.podName) ||
      condition(v)?.reason === 'Failed',
    120_000,
    ctx.explain,
  );
  ctx.timings['baseImageRebuild'] = Date.now() - s;
  expect(condition(second)).toMatchObject({ status: 'True', reason: 'Succeeded' });
  expect(second!.status!.baseImages).toEqual([{ name: v1.ref, digest: v2.digest }]);
  expect(second!.status!.podName).toMatch(/^moving-build-1-[0-9a-f]+$/);
  expect(second!.status!.imageDigest).not.toBe(first!.status!.imageDigest);
  expect(second!.metadata.generation).toBe(first!.metadata.generation);

  const events = await node.kubectl([
    'get',
    'events',
    '-n',
    ns,
    '--field-selector',
    'involvedObject.name=moving,reason=BaseImageChanged',
    '-o',
    'jsonpath={range .items[*]}{.message}{"\\n"}{end}',
  ]);
  expect(events).toContain(`${v1.ref} moved from ${v1.digest} to ${v2.digest}: building again`);
  const wide = await node.kubectl(['get', 'imagebuild', '-n', ns, 'moving', '-o', 'wide']);
  ctx.show(`kubectl get imagebuild -n ${ns} moving -o wide (after the base moved)`, wide);
  ctx.show(`kubectl get events -n ${ns} --field-selector reason=BaseImageChanged`, events);
  const [header, row] = wide.trim().split('\n');
  expect(header).toMatch(/\bBASE\b/);
  expect(row).toMatch(new RegExp(`^moving\\s+True\\s+Succeeded\\s+${second!.status!.imageDigest}\\s.*\\s${v2.digest}\\s*$`));
}
