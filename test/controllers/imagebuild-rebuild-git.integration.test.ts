/**
 * spec.rebuild.onBaseImageChange for a Git source, on a real kube-apiserver, a real registry and a
 * Git smart-HTTP server: the controller cannot read the FROM lines (they are in the repository), so
 * it takes the bases from the build Pod's result (`baseImages`, written by `stevedore build
 * --result-file`), polls those, and builds again when one moves. The kubelet stand-in runs the Pods.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { API_VERSION, GROUP, VERSION } from '../../src/k8s/api/common.js';
import type { ImageBuild } from '../../src/k8s/api/imagebuild.js';
import { parseImageName } from '../../src/transports/index.js';
import { makeRandomImage } from '../../hack/lib/harness/images.js';
import { startControlPlane, type ControlPlane } from '../../hack/lib/harness/controlplane.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { cleanupCli, ensureBuilt } from '../cli/stevedore.js';
import { ok, registryDigest, waitFor } from './helpers.js';
import { startGitServer } from './imagebuild-git.js';
import { startBuildRig, type BuildRig } from './imagebuild-rig.js';

const NS = 'rebuild-git';
const temps = new TempDirs();
let cp: ControlPlane;
let reg: TestRegistry;
let rig: BuildRig;

const buildsPath = (name?: string) => `/apis/${GROUP}/${VERSION}/namespaces/${NS}/imagebuilds${name ? `/${name}` : ''}`;
const getBuild = async (name: string) => (await ok(cp, 'GET', buildsPath(name))) as ImageBuild;
const ready = (b: ImageBuild) => b.status?.conditions?.find((c) => c.type === 'Ready');

async function pushBase(repo: string, seed: string): Promise<string> {
  const img = await makeRandomImage({ layers: 1, layerSize: 2048, seed, layoutDir: await temps.make(`base-${seed}`) });
  await copyReference(parseImageName(img.ociRef), parseImageName(`docker://${reg.host}/${repo}:1`), { destContext: { tlsVerify: false } });
  return (await registryDigest(reg.url, repo, '1'))!;
}

beforeAll(async () => {
  [cp, reg] = await Promise.all([startControlPlane(), startRegistry({ name: 'imagebuild-rebuild-git' }), ensureBuilt()]);
  await cp.installCRDs();
  await cp.createNamespace(NS);
  rig = await startBuildRig(cp, { namespace: NS, systemNamespace: 'stevedore-system', name: 'imagebuild-rebuild-git', minBaseImagePollMs: 1_000 });
}, 120_000);

afterAll(async () => {
  await rig?.stop();
  await Promise.all([cp?.stop(), reg?.stop()]);
  await temps.cleanup();
  await cleanupCli();
});

describe('ImageBuild spec.rebuild.onBaseImageChange, Git source', () => {
  it('watches the bases the build Pod reported, and builds again when one moves', async () => {
    const moving = `${reg.host}/base/git-moving:1`;
    const tool = `${reg.host}/base/git-tool:1`;
    const first = await pushBase('base/git-moving', 'git-one');
    const toolDigest = await pushBase('base/git-tool', 'git-tool');

    // A repository whose Containerfile the controller never sees: two registry bases, one by build arg.
    const root = await temps.make('git-root');
    const work = await temps.make('git-work');
    const g = (...args: string[]) => execFileSync('git', ['-C', work, '-c', 'user.name=t', '-c', 'user.email=t@e', ...args], { encoding: 'utf8' }).trim();
    g('init', '--quiet', '-b', 'main');
    await mkdir(join(work, 'app'));
    await writeFile(
      join(work, 'app', 'Containerfile'),
      `ARG BASE\nFROM ${tool} AS tool\nLABEL stage=tool\nFROM $BASE\nCOPY --from=tool /. /tool/\nLABEL org.example.app=git\n`,
    );
    g('add', '.');
    g('commit', '--quiet', '-m', 'app');
    execFileSync('git', ['clone', '--quiet', '--bare', work, join(root, 'app.git')]);
    const git = await startGitServer(root, 'builder', 'gitpw');
    try {
      await ok(cp, 'POST', `/api/v1/namespaces/${NS}/secrets`, {
        metadata: { name: 'git-creds' },
        type: 'kubernetes.io/basic-auth',
        stringData: { username: 'builder', password: 'gitpw' },
      });
      const created = (await ok(cp, 'POST', buildsPath(), {
        apiVersion: API_VERSION,
        kind: 'ImageBuild',
        metadata: { name: 'app' },
        spec: {
          source: { git: { url: `${git.url}/app.git`, revision: 'main', credentials: { name: 'git-creds' } } },
          contextDir: 'app',
          buildArgs: [{ name: 'BASE', value: moving }],
          output: { image: `${reg.host}/team/git-app:1`, insecure: true },
          rebuild: { onBaseImageChange: true, interval: '1s' },
        },
      })) as ImageBuild;
      const b1 = await waitFor(
        'first build',
        () => getBuild('app'),
        (b) => ['Succeeded', 'Failed'].includes(ready(b)?.reason ?? '') && b.status?.observedGeneration === created.metadata.generation,
        120_000,
      );
      expect(ready(b1)?.reason, JSON.stringify(b1.status)).toBe('Succeeded');
      const byName = (b: ImageBuild) => [...(b.status?.baseImages ?? [])].sort((x, y) => x.name.localeCompare(y.name));
      expect(byName(b1)).toEqual(
        [
          { name: moving, digest: first },
          { name: tool, digest: toolDigest },
        ].sort((x, y) => x.name.localeCompare(y.name)),
      );
      const out1 = b1.status!.imageDigest!;

      const second = await pushBase('base/git-moving', 'git-two');
      expect(second).not.toBe(first);
      const b2 = await waitFor(
        'second build',
        () => getBuild('app'),
        (b) => ready(b)?.reason === 'Succeeded' && b.status?.podName !== b1.status!.podName && b.status?.baseImages?.some((x) => x.digest === second) === true,
        120_000,
      );
      expect(b2.metadata.generation).toBe(created.metadata.generation);
      expect(byName(b2)).toEqual(
        [
          { name: moving, digest: second },
          { name: tool, digest: toolDigest },
        ].sort((x, y) => x.name.localeCompare(y.name)),
      );
      expect(b2.status!.imageDigest).not.toBe(out1);
      expect(b2.status!.imageDigest).toBe(await registryDigest(reg.url, 'team/git-app', '1'));
      const events = (await ok(cp, 'GET', `/apis/events.k8s.io/v1/namespaces/${NS}/events`)) as {
        items: { reason: string; note: string; regarding: { name: string } }[];
      };
      expect(events.items.filter((e) => e.regarding.name === 'app' && e.reason === 'BaseImageChanged').map((e) => e.note)).toEqual([
        `${moving} moved from ${first} to ${second}: building again`,
      ]);
    } finally {
      git.close();
    }
  });
});
