/**
 * The ImageBuild controller on a real kube-apiserver with a real registry and the real `stevedore`
 * CLI as the builder. Build Pods are run by the kubelet stand-in (test/harness/kubelet-standin.ts),
 * which runs each Pod's containers as local processes and writes Pod status as a kubelet would;
 * everything else is real.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { IMAGE_BUILD_FINALIZER } from '../../src/controllers/imagebuild.js';
import { API_VERSION, GROUP, VERSION } from '../../src/k8s/api/common.js';
import type { ImageBuild } from '../../src/k8s/api/imagebuild.js';
import { parseImageName } from '../../src/transports/index.js';
import { makeBusyboxImage } from '../../hack/lib/harness/images.js';
import { startControlPlane, type ControlPlane } from '../../hack/lib/harness/controlplane.js';
import type { KubeletStandIn } from '../../hack/lib/harness/kubelet-standin.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { REPO_ROOT, cleanupCli, cliTempDir, ensureBuilt, stevedore } from '../cli/stevedore.js';
import { dockerConfigSecret, ok, registryDigest, waitFor } from './helpers.js';
import { startGitServer } from './imagebuild-git.js';
import { startBuildRig, type BuildRig } from './imagebuild-rig.js';

const NS = 'builds';
const SYSTEM_NS = 'stevedore-system';

const temps = new TempDirs();
let cp: ControlPlane;
let reg: TestRegistry;
let kubelet: KubeletStandIn;
let rig: BuildRig;
let blackhole: Server;
let blackholeHost: string;
const held: Socket[] = [];
let base: string;

const buildsPath = (name?: string, sub?: string) => `/apis/${GROUP}/${VERSION}/namespaces/${NS}/imagebuilds${name ? `/${name}` : ''}${sub ? `/${sub}` : ''}`;
const podPath = (name?: string) => `/api/v1/namespaces/${NS}/pods${name ? `/${name}` : ''}`;

async function getBuild(name: string): Promise<ImageBuild | undefined> {
  const res = await cp.request('GET', buildsPath(name));
  if (res.status === 404) return undefined;
  if (res.status >= 300) throw new Error(`GET ${name}: ${res.status} ${res.body}`);
  return res.json as ImageBuild;
}
async function getPod(name: string): Promise<V1Pod | undefined> {
  const res = await cp.request('GET', podPath(name));
  return res.status === 404 ? undefined : (res.json as V1Pod);
}
const create = (name: string, spec: ImageBuild['spec']) =>
  ok(cp, 'POST', buildsPath(), { apiVersion: API_VERSION, kind: 'ImageBuild', metadata: { name }, spec }) as Promise<ImageBuild>;
const ready = (b: ImageBuild | undefined) => b?.status?.conditions?.find((c) => c.type === 'Ready');
const done = (gen: number | undefined, reason: string) => (b: ImageBuild | undefined) =>
  b?.status?.observedGeneration === gen && ready(b)?.reason === reason && ready(b)?.observedGeneration === gen;
const out = (repo: string) => ({ image: `${reg.host}/${repo}:1`, insecure: true });

beforeAll(async () => {
  [cp, reg] = await Promise.all([startControlPlane(), startRegistry({ name: 'imagebuild' }), ensureBuilt()]);
  await cp.installCRDs();
  await cp.createNamespace(NS);
  const img = await makeBusyboxImage(await temps.make('busybox'), 'latest');
  base = `${reg.host}/base/busybox:1`;
  await copyReference(parseImageName(img.ociRef), parseImageName(`docker://${base}`), { destContext: { tlsVerify: false } });

  // A registry that accepts connections and never answers: a build pulling from it hangs.
  blackhole = createServer((s) => {
    held.push(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', r));
  blackholeHost = `127.0.0.1:${(blackhole.address() as { port: number }).port}`;

  rig = await startBuildRig(cp, { namespace: NS, systemNamespace: SYSTEM_NS, name: 'imagebuild' });
  kubelet = rig.kubelet;
}, 120_000);

afterAll(async () => {
  await rig?.stop();
  for (const s of held) s.destroy();
  blackhole?.close();
  await Promise.all([cp?.stop(), reg?.stop()]);
  await temps.cleanup();
  await cleanupCli();
});

describe('ImageBuild controller: build Pods on a real API server', () => {
  it('accepts examples/imagebuild.yaml (server-side dry run against the CRD schema and its rules)', async () => {
    const example = parseYaml(await readFile(join(REPO_ROOT, 'examples', 'imagebuild.yaml'), 'utf8')) as ImageBuild;
    const res = await cp.request('POST', `${buildsPath()}?dryRun=All`, { headers: { 'content-type': 'application/json' }, body: JSON.stringify(example) });
    expect(res.status, res.body).toBe(201);
    expect((res.json as ImageBuild).spec.source.git?.url).toBe('https://git.example.com/org/app.git');
  });

  it('builds an inline Containerfile with a RUN step in a locked-down Pod and reports the pushed digest', async () => {
    const created = await create('inline', {
      source: { inline: { containerfile: `FROM ${base}\nLABEL org.example.built-by=stevedore\nRUN echo built-in-a-pod as $(id -u) > /built.txt\n` } },
      output: out('out/inline'),
    });
    const b = await waitFor('Succeeded', () => getBuild('inline'), done(created.metadata.generation, 'Succeeded'), 90_000);
    const digest = await registryDigest(reg.url, 'out/inline', '1');
    expect(digest).toMatch(/^sha256:/);
    // The RUN step ran (as root of the build's nested user namespace) and its layer is the image's last.
    const manifest = (await (
      await fetch(`${reg.url}/v2/out/inline/manifests/1`, {
        headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' },
      })
    ).json()) as { layers: { digest: string }[] };
    const runLayer = manifest.layers.at(-1)!.digest;
    const listing = execFileSync('sh', ['-c', `curl -sf ${reg.url}/v2/out/inline/blobs/${runLayer} | tar -xzO built.txt`], { encoding: 'utf8' });
    expect(listing).toBe('built-in-a-pod as 0\n');
    expect(b!.status!.imageDigest).toBe(digest);
    expect(b!.status!.image).toBe(`${reg.host}/out/inline:1`);
    expect(b!.status!.imageSize).toBeGreaterThan(0);
    expect(ready(b)!.status).toBe('True');
    expect(b!.status!.conditions!.map((c) => c.type)).toEqual(['Ready']);
    expect(Date.parse(b!.status!.completionTime!)).toBeGreaterThanOrEqual(Date.parse(b!.status!.startTime!));
    expect(b!.metadata.finalizers).toContain(IMAGE_BUILD_FINALIZER);

    // The Pod: owned by the ImageBuild, non-root, nothing to escalate with, its own user namespace.
    const pod = (await getPod(b!.status!.podName!))!;
    expect(pod.metadata!.ownerReferences![0]).toMatchObject({ kind: 'ImageBuild', name: 'inline', uid: created.metadata.uid, controller: true });
    expect(pod.spec!.hostUsers).toBe(false);
    expect(pod.spec!.automountServiceAccountToken).toBe(false);
    expect(pod.spec!.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    for (const c of [...pod.spec!.initContainers!, ...pod.spec!.containers]) {
      expect(c.securityContext).toMatchObject({
        allowPrivilegeEscalation: false,
        privileged: false,
        capabilities: { drop: ['ALL'] },
        readOnlyRootFilesystem: true,
      });
    }
    expect(pod.status!.phase).toBe('Succeeded');
    expect(kubelet.runs.filter((r) => r.pod === pod.metadata!.name).map((r) => [r.container, r.user])).toEqual([
      ['source', '65532:65532 userns'],
      ['build', '65532:65532 userns'],
    ]);
    const events = (await ok(cp, 'GET', `/apis/events.k8s.io/v1/namespaces/${NS}/events`)) as {
      items: { reason: string; note: string; regarding: { name: string; kind: string } }[];
    };
    const mine = events.items.filter((e) => e.regarding.kind === 'ImageBuild' && e.regarding.name === 'inline');
    expect(mine.map((e) => e.reason)).toEqual(expect.arrayContaining(['Building', 'Succeeded']));
    expect(mine.find((e) => e.reason === 'Succeeded')!.note).toContain(digest!);
  });

  it('builds a Git revision fetched with the credentials Secret, recording the commit', async () => {
    const root = await cliTempDir('git-root');
    const work = await cliTempDir('git-work');
    const g = (...args: string[]) => execFileSync('git', ['-C', work, '-c', 'user.name=t', '-c', 'user.email=t@e', ...args], { encoding: 'utf8' }).trim();
    g('init', '--quiet', '-b', 'main');
    await mkdir(join(work, 'app'));
    await writeFile(join(work, 'app', 'Containerfile'), `FROM ${base}\nCOPY msg.txt /msg.txt\n`);
    await writeFile(join(work, 'app', 'msg.txt'), 'from git\n');
    g('add', '.');
    g('commit', '--quiet', '-m', 'app');
    g('tag', 'v1');
    const commit = g('rev-parse', 'HEAD');
    await writeFile(join(work, 'app', 'msg.txt'), 'later\n');
    g('commit', '--quiet', '-am', 'later');
    execFileSync('git', ['clone', '--quiet', '--bare', work, join(root, 'app.git')]);
    const git = await startGitServer(root, 'builder', 's3cret');
    try {
      await ok(cp, 'POST', `/api/v1/namespaces/${NS}/secrets`, {
        metadata: { name: 'git-creds' },
        type: 'kubernetes.io/basic-auth',
        stringData: { username: 'builder', password: 's3cret' },
      });
      const created = await create('from-git', {
        source: { git: { url: `${git.url}/app.git`, revision: 'v1', credentials: { name: 'git-creds' } } },
        contextDir: 'app',
        output: out('out/git'),
      });
      const b = await waitFor('Succeeded', () => getBuild('from-git'), done(created.metadata.generation, 'Succeeded'), 60_000);
      expect(b!.status!.sourceCommit).toBe(commit);
      expect(b!.status!.imageDigest).toBe(await registryDigest(reg.url, 'out/git', '1'));
      // The password reached git through its environment, not its command line.
      const pod = (await getPod(b!.status!.podName!))!;
      expect(JSON.stringify(pod.spec)).not.toContain('s3cret');
    } finally {
      git.close();
    }
  });

  it('builds several platforms into an index and lists each platform’s digest', async () => {
    const created = await create('multi', {
      source: { inline: { containerfile: 'FROM scratch\nLABEL org.example.multi=yes\n' } },
      platforms: ['linux/amd64', 'linux/arm64'],
      output: out('out/multi'),
    });
    const b = await waitFor('Succeeded', () => getBuild('multi'), done(created.metadata.generation, 'Succeeded'), 60_000);
    expect(b!.status!.imageDigest).toBe(await registryDigest(reg.url, 'out/multi', '1'));
    const index = (await (await fetch(`${reg.url}/v2/out/multi/manifests/1`, { headers: { accept: 'application/vnd.oci.image.index.v1+json' } })).json()) as {
      manifests: { digest: string; platform: { os: string; architecture: string; variant?: string } }[];
    };
    const fromRegistry = index.manifests.map((m) => ({
      platform: [m.platform.os, m.platform.architecture, m.platform.variant].filter(Boolean).join('/'),
      digest: m.digest,
    }));
    expect([...b!.status!.platforms!].sort((x, y) => x.platform.localeCompare(y.platform))).toEqual(
      fromRegistry.sort((x, y) => x.platform.localeCompare(y.platform)),
    );
    expect(b!.status!.platforms!.map((p) => p.platform).sort()).toEqual(['linux/amd64', expect.stringMatching(/^linux\/arm64/)]);
  });

  it('builds from an OCI-artifact context pushed with `stevedore context push`, recording the artifact digest', async () => {
    const dir = await cliTempDir('ctx');
    await mkdir(join(dir, 'app'));
    await writeFile(join(dir, 'app', 'Containerfile'), `FROM ${base}\nCOPY hello.txt /hello.txt\n`);
    await writeFile(join(dir, 'app', 'hello.txt'), 'hello from the context\n');
    const pushed = await stevedore(['context', 'push', dir, `${reg.host}/ctx/app:src`]);
    expect(pushed.code, pushed.stderr).toBe(0);
    const artifact = pushed.stdout.trim();
    const created = await create('from-artifact', { source: { artifact: { image: artifact } }, contextDir: 'app', output: out('out/artifact') });
    const b = await waitFor('Succeeded', () => getBuild('from-artifact'), done(created.metadata.generation, 'Succeeded'), 60_000);
    expect(b!.status!.sourceCommit).toBe(artifact.split('@')[1]);
    expect(b!.status!.imageDigest).toBe(await registryDigest(reg.url, 'out/artifact', '1'));
  });

  it('reports a failing build as Ready=False Failed with the builder’s reason and message', async () => {
    const created = await create('broken', {
      source: { inline: { containerfile: `FROM ${reg.host}/base/does-not-exist:1\n` } },
      output: out('out/broken'),
    });
    const b = await waitFor('Failed', () => getBuild('broken'), done(created.metadata.generation, 'Failed'), 60_000);
    expect(ready(b)!.status).toBe('False');
    expect(b!.status!.conditions!.find((c) => c.type === 'Stalled')?.status).toBe('True');
    expect(b!.status!.failureDetails!.reason).toMatch(/^[A-Z][A-Za-z]+$/);
    expect(b!.status!.failureDetails!.message).toMatch(/does-not-exist/);
    expect(b!.status!.imageDigest).toBeUndefined();
    expect(await registryDigest(reg.url, 'out/broken', '1')).toBeUndefined();
  });

  it('reports a missing context artifact as Failed with reason SourceUnavailable from the init container', async () => {
    const created = await create('no-source', { source: { artifact: { image: `${reg.host}/ctx/missing:v1` } }, output: out('out/nosource') });
    const b = await waitFor('Failed', () => getBuild('no-source'), done(created.metadata.generation, 'Failed'), 60_000);
    expect(b!.status!.failureDetails).toMatchObject({ reason: 'SourceUnavailable' });
    expect(b!.status!.failureDetails!.message).toMatch(/ctx\/missing/);
    expect(kubelet.runs.filter((r) => r.pod === b!.status!.podName).map((r) => r.container)).toEqual(['source']);
  });

  it('waits with CredentialsNotFound while the push Secret is missing, then builds once it exists', async () => {
    const created = await create('needs-secret', {
      source: { inline: { containerfile: `FROM ${base}\n` } },
      output: { ...out('out/secret'), pushSecret: { name: 'push-creds' } },
    });
    const b = await waitFor('CredentialsNotFound', () => getBuild('needs-secret'), done(created.metadata.generation, 'CredentialsNotFound'), 20_000);
    expect(ready(b)!.message).toContain(`Secret ${NS}/push-creds`);
    expect(b!.status!.podName).toBeUndefined();
    await ok(cp, 'POST', `/api/v1/namespaces/${NS}/secrets`, dockerConfigSecret('push-creds', reg.host, 'any', 'thing'));
    const after = await waitFor('Succeeded', () => getBuild('needs-secret'), done(created.metadata.generation, 'Succeeded'), 60_000);
    const pod = (await getPod(after!.status!.podName!))!;
    expect(pod.spec!.initContainers!.map((c) => c.name)).toEqual(['auth', 'source']);
    expect(pod.spec!.containers[0]!.args).toEqual(expect.arrayContaining(['--authfile', '/var/run/stevedore/auth/config.json']));
  });

  it('gives up after spec.timeout with DeadlineExceeded and deletes the Pod', async () => {
    // The source step fetches from a registry that never answers, so the build hangs.
    const created = await create('slow', {
      source: { artifact: { image: `${blackholeHost}/hangs/forever:1` } },
      output: out('out/slow'),
      timeout: '4s',
    });
    const b = await waitFor('DeadlineExceeded', () => getBuild('slow'), done(created.metadata.generation, 'DeadlineExceeded'), 30_000);
    expect(b!.status!.failureDetails!.reason).toBe('DeadlineExceeded');
    const podName = b!.status!.podName!;
    await waitFor(
      'Pod gone',
      () => getPod(podName),
      (p) => p === undefined,
      15_000,
    );
    expect(kubelet.isRunning(podName)).toBe(false);
  });

  it('cancels a running build when its spec changes, and builds the new generation', async () => {
    const created = await create('changing', { source: { artifact: { image: `${blackholeHost}/hangs/forever:1` } }, output: out('out/changing') });
    const first = await waitFor(
      'building',
      () => getBuild('changing'),
      (b) => !!b?.status?.podName && kubelet.isRunning(b.status.podName),
      30_000,
    );
    const oldPod = first!.status!.podName!;
    const patched = (await ok(
      cp,
      'PATCH',
      buildsPath('changing'),
      { spec: { source: { artifact: null, inline: { containerfile: `FROM ${base}\nLABEL v=2\n` } } } },
      'application/merge-patch+json',
    )) as ImageBuild;
    expect(patched.metadata.generation).toBe((created.metadata.generation ?? 1) + 1);
    const b = await waitFor('Succeeded', () => getBuild('changing'), done(patched.metadata.generation, 'Succeeded'), 60_000);
    expect(b!.status!.podName).not.toBe(oldPod);
    await waitFor(
      'old Pod gone',
      () => getPod(oldPod),
      (p) => p === undefined,
      15_000,
    );
    expect(kubelet.isRunning(oldPod)).toBe(false);
  });

  it('`stevedore build --remote` pushes the local context, builds it on the cluster and prints the digest', async () => {
    const dir = await cliTempDir('remote');
    await writeFile(join(dir, 'Containerfile'), `FROM ${base}\nCOPY greeting.txt /greeting.txt\n`);
    await writeFile(join(dir, 'greeting.txt'), 'built remotely\n');
    await writeFile(join(dir, 'secret.env'), 'TOKEN=do-not-upload\n');
    await writeFile(join(dir, '.containerignore'), 'secret.env\n');
    const r = await stevedore(['build', '--remote', '-t', `${reg.host}/out/remote:1`, '--tls-verify=false', '--kubeconfig', cp.kubeconfigPath, '-n', NS, dir], {
      timeoutMs: 90_000,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(await registryDigest(reg.url, 'out/remote', '1'));
    expect(r.stderr).toMatch(/created ImageBuild builds\/\S*remote-/);
    expect(r.stderr).toMatch(/Succeeded: built and pushed/);
    const list = (await ok(cp, 'GET', `${buildsPath()}?labelSelector=stevedore.dev%2Fremote-build%3Dtrue`)) as { items: ImageBuild[] };
    expect(list.items.some((b) => b.status?.imageDigest === r.stdout.trim())).toBe(true);
  });

  it('`stevedore build --remote` exits 1 with the build’s reason when the build fails', async () => {
    const dir = await cliTempDir('remote-bad');
    await writeFile(join(dir, 'Containerfile'), `FROM ${reg.host}/base/does-not-exist:1\n`);
    const r = await stevedore(
      ['build', '--remote', '-t', `${reg.host}/out/remote-bad:1`, '--tls-verify=false', '--kubeconfig', cp.kubeconfigPath, '-n', NS, dir],
      { timeoutMs: 90_000 },
    );
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/Error: ImageBuild builds\/\S*remote-bad-\S+ Failed: .*does-not-exist/);
  });

  it('rebuilds on reconcile.stevedore.dev/requestedAt and keeps only successfulBuildsHistoryLimit finished Pods', async () => {
    const created = await create('history', {
      source: { inline: { containerfile: `FROM ${base}\nLABEL n=1\n` } },
      output: out('out/history'),
      successfulBuildsHistoryLimit: 1,
    });
    const first = await waitFor('Succeeded', () => getBuild('history'), done(created.metadata.generation, 'Succeeded'), 60_000);
    const firstPod = first!.status!.podName!;
    await ok(
      cp,
      'PATCH',
      buildsPath('history'),
      { metadata: { annotations: { 'reconcile.stevedore.dev/requestedAt': 'again-1' } } },
      'application/merge-patch+json',
    );
    const second = await waitFor(
      'rebuilt',
      () => getBuild('history'),
      (b) => b?.status?.lastHandledReconcileAt === 'again-1' && ready(b)?.reason === 'Succeeded',
      60_000,
    );
    expect(second!.status!.podName).not.toBe(firstPod);
    expect(second!.metadata.generation).toBe(created.metadata.generation);
    // The older finished Pod goes; the newest stays for its logs.
    await waitFor(
      'old Pod pruned',
      () => getPod(firstPod),
      (p) => p === undefined,
      15_000,
    );
    expect((await getPod(second!.status!.podName!))?.status?.phase).toBe('Succeeded');
  });

  it('deletes a failed build Pod at once with failedBuildsHistoryLimit: 0', async () => {
    const created = await create('no-history', {
      source: { artifact: { image: `${reg.host}/ctx/missing:v2` } },
      output: out('out/nohistory'),
      failedBuildsHistoryLimit: 0,
    });
    const b = await waitFor('Failed', () => getBuild('no-history'), done(created.metadata.generation, 'Failed'), 60_000);
    await waitFor(
      'failed Pod deleted',
      () => getPod(b!.status!.podName!),
      (p) => p === undefined,
      15_000,
    );
  });

  it('`stevedore build --remote` interrupted with SIGINT deletes its ImageBuild, which cancels the build', async () => {
    const dir = await cliTempDir('remote-int');
    await writeFile(join(dir, 'Containerfile'), `FROM ${blackholeHost}/hangs/forever:1\n`);
    const child = spawn(
      process.execPath,
      [
        join(REPO_ROOT, 'bin', 'stevedore.js'),
        'build',
        '--remote',
        '-t',
        `${reg.host}/out/remote-int:1`,
        '--tls-verify=false',
        '--kubeconfig',
        cp.kubeconfigPath,
        '-n',
        NS,
        dir,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    const building = await waitFor(
      'remote build running',
      async () =>
        ((await ok(cp, 'GET', `${buildsPath()}?labelSelector=stevedore.dev%2Fremote-build%3Dtrue`)) as { items: ImageBuild[] }).items.find((b) =>
          b.spec.output.image.endsWith('/out/remote-int:1'),
        ),
      (b) => !!b?.status?.podName && kubelet.isRunning(b.status.podName),
      30_000,
    );
    child.kill('SIGINT');
    expect(await exited, stderr).toBe(1);
    expect(stderr).toMatch(/canceled: ImageBuild builds\/\S+ deleted/);
    await waitFor(
      'ImageBuild gone',
      () => getBuild(building!.metadata.name!),
      (b) => b === undefined,
      15_000,
    );
    await waitFor(
      'Pod gone',
      () => getPod(building!.status!.podName!),
      (p) => p === undefined,
      15_000,
    );
  });

  it('cancels the build when the ImageBuild is deleted: Pod and process gone, nothing pushed', async () => {
    await create('doomed', { source: { artifact: { image: `${blackholeHost}/hangs/forever:1` } }, output: out('out/doomed') });
    const b = await waitFor(
      'building',
      () => getBuild('doomed'),
      (x) => !!x?.status?.podName && kubelet.isRunning(x.status.podName),
      30_000,
    );
    const podName = b!.status!.podName!;
    await ok(cp, 'DELETE', buildsPath('doomed'));
    await waitFor(
      'ImageBuild gone',
      () => getBuild('doomed'),
      (x) => x === undefined,
      15_000,
    );
    await waitFor(
      'Pod gone',
      () => getPod(podName),
      (p) => p === undefined,
      15_000,
    );
    expect(kubelet.isRunning(podName)).toBe(false);
    expect(await registryDigest(reg.url, 'out/doomed', '1')).toBeUndefined();
  });
});
