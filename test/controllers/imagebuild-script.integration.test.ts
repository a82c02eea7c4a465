/**
 * ImageBuild with a script source (spec.source.script) on a real kube-apiserver and a real
 * registry: the build Pod (run by the kubelet stand-in, test/harness/kubelet-standin.ts, as local
 * processes in a user namespace of their own) runs a Buildah-style script with the real
 * `stevedore buildah` verbs, then pushes what it committed. The image's config and files are
 * read back from the registry. And the hostile tenant: a script build's Pod is a Containerfile
 * build's Pod as far as security goes, whatever the tenant writes into the object, and the script
 * does not see the push credentials the Pod pushes with.
 */
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
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
import { tenantRequest, tenantSetup } from '../tenancy/tenant.js';
import { dockerConfigSecret, ok, registryDigest, waitFor } from './helpers.js';
import { startBuildRig, type BuildRig } from './imagebuild-rig.js';

const NS = 'script-builds';
const SYSTEM_NS = 'stevedore-system';
const temps = new TempDirs();
let cp: ControlPlane;
let reg: TestRegistry;
/** A registry that needs the push Secret's credentials. */
let locked: TestRegistry;
let rig: BuildRig;
let token: string;
let base: string;

const buildsPath = (name?: string) => `/apis/${GROUP}/${VERSION}/namespaces/${NS}/imagebuilds${name ? `/${name}` : ''}`;
const getBuild = async (name: string) => (await ok(cp, 'GET', buildsPath(name))) as ImageBuild;
const getPod = async (name: string) => (await ok(cp, 'GET', `/api/v1/namespaces/${NS}/pods/${name}`)) as V1Pod;
const ready = (b: ImageBuild | undefined) => b?.status?.conditions?.find((c) => c.type === 'Ready');
const finished = (gen: number | undefined) => (b: ImageBuild | undefined) =>
  b?.status?.observedGeneration === gen && ready(b)?.observedGeneration === gen && ['Succeeded', 'Failed'].includes(ready(b)?.reason ?? '');
async function create(name: string, spec: unknown): Promise<ImageBuild> {
  const res = await tenantRequest(cp, token, 'POST', buildsPath(), { apiVersion: API_VERSION, kind: 'ImageBuild', metadata: { name }, spec });
  if (res.status !== 201) throw new Error(`create ImageBuild ${name}: ${res.status} ${res.body}`);
  return res.json as ImageBuild;
}

/** A registry blob or manifest, with the locked registry's credentials when it is that one. */
async function registryGet(r: TestRegistry, path: string, accept?: string): Promise<Buffer> {
  const headers: Record<string, string> = accept ? { accept } : {};
  if (r.username) headers.authorization = `Basic ${Buffer.from(`${r.username}:${r.password}`).toString('base64')}`;
  const res = await fetch(`${r.url}/v2/${path}`, { headers });
  if (!res.ok) throw new Error(`GET ${path}: ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

interface Pushed {
  config: {
    config: { Env?: string[]; ExposedPorts?: Record<string, object>; WorkingDir?: string; Cmd?: string[]; Labels?: Record<string, string>; User?: string };
    history?: { created_by?: string }[];
  };
  /** path → `mode owner/group` (and the content of the paths asked for), from every layer, upper layers winning. */
  files: Map<string, { listing: string; content: string }>;
  layers: number;
}

/** Reads an image from the registry: its config, and every layer's files (tar reads plain and gzip layers alike). */
async function readImage(r: TestRegistry, repo: string, tag: string, contentOf: readonly string[]): Promise<Pushed> {
  const manifest = JSON.parse((await registryGet(r, `${repo}/manifests/${tag}`, MANIFEST)).toString()) as {
    config: { digest: string };
    layers: { digest: string }[];
  };
  const config = JSON.parse((await registryGet(r, `${repo}/blobs/${manifest.config.digest}`)).toString()) as Pushed['config'];
  const files = new Map<string, { listing: string; content: string }>();
  const dir = await temps.make('layers');
  for (const [i, l] of manifest.layers.entries()) {
    const file = join(dir, `layer-${i}`);
    await writeFile(file, await registryGet(r, `${repo}/blobs/${l.digest}`));
    const listing = execFileSync('tar', ['-tvf', file, '--numeric-owner'], { encoding: 'utf8' }).split('\n').filter(Boolean);
    for (const line of listing) {
      const parts = line.trim().split(/\s+/);
      const raw = parts
        .slice(5)
        .join(' ')
        .replace(/ -> .*$/, '');
      const wanted = parts[0]!.startsWith('-') && contentOf.includes(raw.replace(/^\.\//, ''));
      const content = wanted ? execFileSync('tar', ['-xOf', file, raw], { encoding: 'utf8' }) : '';
      files.set(raw.replace(/^\.\//, '').replace(/\/$/, ''), { listing: `${parts[0]} ${parts[1]}`, content });
    }
  }
  return { config, files, layers: manifest.layers.length };
}

beforeAll(async () => {
  [cp, reg, locked] = await Promise.all([
    startControlPlane(),
    startRegistry({ name: 'script' }),
    startRegistry({ name: 'script-locked', auth: 'basic' }),
    ensureBuilt(),
  ]);
  await cp.installCRDs();
  await cp.createNamespace(NS);
  const img = await makeBusyboxImage(await temps.make('busybox'), 'latest');
  base = `${reg.host}/base/busybox:1`;
  await copyReference(parseImageName(img.ociRef), parseImageName(`docker://${base}`), { destContext: { tlsVerify: false } });
  token = await tenantSetup(cp, NS, 'tenant');
  rig = await startBuildRig(cp, { namespace: NS, systemNamespace: SYSTEM_NS, name: 'imagebuild-script' });
}, 120_000);

afterAll(async () => {
  await rig?.stop();
  await Promise.all([cp?.stop(), reg?.stop(), locked?.stop()]);
  await temps.cleanup();
  await cleanupCli();
});

/** docs/scripted-builds.md's example, with verification between steps and a conditional on a `buildah run`. */
const SCRIPT = `c=$(buildah from "$BASE")
buildah config --env APP_ENV=prod --port 8080 --workingdir /app --cmd '["/app/server"]' --label org.example.flavour="$FLAVOUR" "$c"
printf 'hello\\n' > greeting.txt
buildah copy --chown 1000:1000 --chmod 0640 "$c" greeting.txt /app/greeting.txt
if buildah run "$c" -- sh -c 'test -f /app/greeting.txt'; then
  buildah run "$c" -- sh -c 'echo present > /app/state'
else
  buildah run "$c" -- sh -c 'echo absent > /app/state'
fi
if buildah run "$c" -- sh -c 'test -f /app/missing'; then
  buildah run "$c" -- sh -c 'echo wrong-branch > /app/missing-seen'
fi
buildah run "$c" -- sh -c 'if [ "$(cat /app/greeting.txt)" = hello ]; then echo verified > /app/checked; fi'
buildah commit "$c" "$IMAGE"
buildah rm "$c"
`;

describe('ImageBuild: a script source on a real API server', () => {
  it('runs from, config, copy, run with a conditional and commit in the build Pod, and pushes the image to spec.output.image', async () => {
    const created = await create('scripted', {
      source: { script: { inline: SCRIPT } },
      buildArgs: [
        { name: 'BASE', value: base },
        { name: 'FLAVOUR', value: 'slim' },
      ],
      output: { image: `${reg.host}/out/scripted:1`, insecure: true },
    });
    const b = await waitFor('finished', () => getBuild('scripted'), finished(created.metadata.generation), 120_000);
    expect(ready(b), JSON.stringify(b.status)).toMatchObject({ status: 'True', reason: 'Succeeded' });
    const digest = await registryDigest(reg.url, 'out/scripted', '1');
    expect(b.status!.imageDigest).toBe(digest);
    expect(b.status!.image).toBe(`${reg.host}/out/scripted:1`);
    expect(b.status!.imageSize).toBeGreaterThan(0);

    const img = await readImage(reg, 'out/scripted', '1', ['app/greeting.txt', 'app/state', 'app/checked']);
    expect(img.config.config.Env).toContain('APP_ENV=prod');
    // The port as given, as buildah 1.28's config --port writes it (test/cli/buildah-compare.test.ts).
    expect(Object.keys(img.config.config.ExposedPorts ?? {})).toEqual(['8080']);
    expect(img.config.config.WorkingDir).toBe('/app');
    expect(img.config.config.Cmd).toEqual(['/app/server']);
    expect(img.config.config.Labels).toMatchObject({ 'org.example.flavour': 'slim' });
    expect(img.config.history?.at(-1)?.created_by).toBe('/bin/sh');
    // One layer for the commit over the base's (buildah's rule).
    const baseLayers = (JSON.parse((await registryGet(reg, 'base/busybox/manifests/1', MANIFEST)).toString()) as { layers: unknown[] }).layers.length;
    expect(img.layers).toBe(baseLayers + 1);
    // Owner: the build Pod has no subordinate ids (one id in its buildah verbs' namespace), and the
    // commit still writes the owner copy --chown asked for (docs/imagebuild.md).
    expect(img.files.get('app/greeting.txt')).toEqual({ listing: '-rw-r----- 1000/1000', content: 'hello\n' });
    expect(img.files.get('app/state')?.content).toBe('present\n');
    expect(img.files.has('app/missing-seen')).toBe(false);
    expect(img.files.get('app/checked')?.content).toBe('verified\n');

    const pod = await getPod(b.status!.podName!);
    expect([...pod.spec!.initContainers!, ...pod.spec!.containers].map((c) => c.name)).toEqual(['script', 'build']);
    expect(rig.kubelet.runs.filter((r) => r.pod === pod.metadata!.name).map((r) => [r.container, r.user, r.exitCode])).toEqual([
      ['script', '65532:65532 userns', 0],
      ['build', '65532:65532 userns', 0],
    ]);
  });

  it('a script that fails ends the build Failed with its last output lines, and pushes nothing', async () => {
    const created = await create('script-fails', {
      source: {
        script: {
          inline: `c=$(buildah from "$BASE")\necho checking the base\nbuildah run "$c" -- sh -c 'test -f /etc/not-there' || { echo "verification failed: /etc/not-there is missing" >&2; exit 3; }\nbuildah commit "$c" "$IMAGE"\n`,
        },
      },
      buildArgs: [{ name: 'BASE', value: base }],
      output: { image: `${reg.host}/out/script-fails:1`, insecure: true },
    });
    const b = await waitFor('finished', () => getBuild('script-fails'), finished(created.metadata.generation), 120_000);
    expect(ready(b)).toMatchObject({ status: 'False', reason: 'Failed' });
    expect(b.status!.failureDetails!.message).toMatch(/script container failed \(exit code 3\)/);
    expect(b.status!.failureDetails!.message).toContain('verification failed: /etc/not-there is missing');
    expect(await registryDigest(reg.url, 'out/script-fails', '1')).toBeUndefined();
    expect(rig.kubelet.runs.filter((r) => r.pod === b.status!.podName).map((r) => r.container)).toEqual(['script']);
  });
});

describe('ImageBuild script source: the hostile tenant', () => {
  it('gets the Pod a Containerfile build gets, whatever it writes into the object, and its script cannot read the push credentials', async () => {
    await ok(cp, 'POST', `/api/v1/namespaces/${NS}/secrets`, dockerConfigSecret('push-creds', locked.host, locked.username!, locked.password!));
    // Fields a tenant might hope the controller passes on to the Pod: not in the schema, so dropped.
    const hostile = {
      source: {
        script: {
          inline: `for f in /var/run/stevedore/auth/config.json /var/run/stevedore/secrets/push.json /var/run/stevedore/signing/cosign.key /var/run/secrets/kubernetes.io/serviceaccount/token; do
  if [ -r "$f" ]; then echo "read $f" >> loot; cat "$f" >> loot; else echo "cannot read $f" >> loot; fi
done
export -p >> loot
c=$(buildah from "$BASE")
buildah copy "$c" loot /loot
buildah commit "$c" "$IMAGE"
`,
          securityContext: { privileged: true },
          volumes: [{ name: 'host', hostPath: { path: '/' } }],
        },
      },
      buildArgs: [{ name: 'BASE', value: base }],
      hostNetwork: true,
      securityContext: { privileged: true, runAsUser: 0 },
      serviceAccountName: 'stevedore-controller',
      output: { image: `${locked.host}/out/hostile:1`, pushSecret: { name: 'push-creds' }, insecure: true },
    };
    const created = await create('hostile', hostile);
    expect(JSON.stringify(created.spec)).not.toMatch(/privileged|hostPath|hostNetwork|serviceAccountName/);
    const plain = await create('plain', {
      source: { inline: { containerfile: `FROM ${base}\nRUN true\n` } },
      output: { image: `${locked.host}/out/plain:1`, pushSecret: { name: 'push-creds' }, insecure: true },
    });

    const [b, p] = await Promise.all([
      waitFor('hostile finished', () => getBuild('hostile'), finished(created.metadata.generation), 120_000),
      waitFor('plain finished', () => getBuild('plain'), finished(plain.metadata.generation), 120_000),
    ]);
    expect(ready(b), JSON.stringify(b.status)).toMatchObject({ status: 'True', reason: 'Succeeded' });
    expect(ready(p), JSON.stringify(p.status)).toMatchObject({ status: 'True', reason: 'Succeeded' });

    const [scriptPod, filePod] = await Promise.all([getPod(b.status!.podName!), getPod(p.status!.podName!)]);
    for (const k of [
      'hostUsers',
      'automountServiceAccountToken',
      'enableServiceLinks',
      'securityContext',
      'serviceAccountName',
      'hostNetwork',
      'hostPID',
      'hostIPC',
    ] as const) {
      expect(scriptPod.spec![k], k).toEqual(filePod.spec![k]);
    }
    expect(scriptPod.spec!.hostUsers).toBe(false);
    expect(scriptPod.spec!.automountServiceAccountToken).toBe(false);
    const byName = (pod: V1Pod, n: string) => [...pod.spec!.initContainers!, ...pod.spec!.containers].find((c) => c.name === n) as V1Container;
    expect(byName(scriptPod, 'script').securityContext).toEqual(byName(filePod, 'build').securityContext);
    const allowed = [...filePod.spec!.initContainers!, ...filePod.spec!.containers].map((c) => JSON.stringify(c.securityContext));
    for (const c of [...scriptPod.spec!.initContainers!, ...scriptPod.spec!.containers]) expect(allowed, c.name).toContain(JSON.stringify(c.securityContext));
    expect(scriptPod.spec!.volumes!.some((v) => v.hostPath)).toBe(false);
    expect(
      byName(scriptPod, 'script')
        .volumeMounts!.map((m) => m.name)
        .sort(),
    ).toEqual(['tmp', 'workspace']);

    // Pushed with the Secret's credentials (the push container's), yet the script saw none of them.
    const img = await readImage(locked, 'out/hostile', '1', ['loot']);
    const loot = img.files.get('loot')?.content ?? '';
    expect(loot).toContain('cannot read /var/run/stevedore/auth/config.json');
    expect(loot).toContain('cannot read /var/run/stevedore/secrets/push.json');
    expect(loot).not.toContain(locked.password!);
    expect(loot).not.toContain(Buffer.from(`${locked.username}:${locked.password}`).toString('base64'));
  });
});
