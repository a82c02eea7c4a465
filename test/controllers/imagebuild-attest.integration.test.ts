/**
 * ImageBuild signing, SBOM and provenance on a real kube-apiserver with a real registry and the
 * real `stevedore` CLI as the builder (build Pods run by the kubelet stand-in,
 * test/harness/kubelet-standin.ts). The signature is checked against the registry with the public
 * key by `stevedore verify` and by the real cosign.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
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
import { cleanupCli, cliTempDir, ensureBuilt, jsonLines, stevedore } from '../cli/stevedore.js';
import { cosign } from '../sign/cosign.js';
import { ok, registryDigest, waitFor } from './helpers.js';
import { startGitServer } from './imagebuild-git.js';
import { startBuildRig, type BuildRig } from './imagebuild-rig.js';

const NS = 'signed-builds';
const SYSTEM_NS = 'stevedore-system';
const PASSWORD = 'pod-signing-pw';

const temps = new TempDirs();
let cp: ControlPlane;
let reg: TestRegistry;
let rig: BuildRig;
let base: string;
let keys: string;

const buildsPath = (name?: string) => `/apis/${GROUP}/${VERSION}/namespaces/${NS}/imagebuilds${name ? `/${name}` : ''}`;
async function getBuild(name: string): Promise<ImageBuild | undefined> {
  const res = await cp.request('GET', buildsPath(name));
  if (res.status === 404) return undefined;
  if (res.status >= 300) throw new Error(`GET ${name}: ${res.status} ${res.body}`);
  return res.json as ImageBuild;
}
const create = (name: string, spec: Record<string, unknown>) =>
  ok(cp, 'POST', buildsPath(), { apiVersion: API_VERSION, kind: 'ImageBuild', metadata: { name }, spec }) as Promise<ImageBuild>;
const ready = (b: ImageBuild | undefined) => b?.status?.conditions?.find((c) => c.type === 'Ready');
const done = (gen: number | undefined, reason: string) => (b: ImageBuild | undefined) =>
  b?.status?.observedGeneration === gen && ready(b)?.reason === reason && ready(b)?.observedGeneration === gen;
const out = (repo: string) => ({ image: `${reg.host}/${repo}:1`, insecure: true });
const noTls = ['--tls-verify=false'];

async function signingSecret(name: string, data: Record<string, string>): Promise<void> {
  await ok(cp, 'POST', `/api/v1/namespaces/${NS}/secrets`, { metadata: { name }, type: 'Opaque', stringData: data });
}

beforeAll(async () => {
  [cp, reg] = await Promise.all([startControlPlane(), startRegistry({ name: 'imagebuild-attest' }), ensureBuilt()]);
  await cp.installCRDs();
  await cp.createNamespace(NS);
  const img = await makeBusyboxImage(await temps.make('busybox'), 'latest');
  base = `${reg.host}/base/busybox:1`;
  await copyReference(parseImageName(img.ociRef), parseImageName(`docker://${base}`), { destContext: { tlsVerify: false } });

  // A cosign key pair, stored as `cosign generate-key-pair k8s://NS/cosign-key` stores it.
  keys = join(await cliTempDir('ib-keys'), 'cosign');
  const gen = await stevedore(['generate-key', '--output-key-prefix', keys], { env: { COSIGN_PASSWORD: PASSWORD } });
  expect(gen.code, gen.stderr).toBe(0);
  await signingSecret('cosign-key', {
    'cosign.key': await readFile(`${keys}.key`, 'utf8'),
    'cosign.password': PASSWORD,
    'cosign.pub': await readFile(`${keys}.pub`, 'utf8'),
  });

  rig = await startBuildRig(cp, { namespace: NS, systemNamespace: SYSTEM_NS, name: 'imagebuild-attest' });
}, 120_000);

afterAll(async () => {
  await rig?.stop();
  await Promise.all([cp?.stop(), reg?.stop()]);
  await temps.cleanup();
  await cleanupCli();
});

describe('ImageBuild signing, SBOM and provenance', () => {
  it('signs a Git build, attaches its SBOM and SLSA provenance, and the signature verifies against the registry with the public key', async () => {
    const root = await cliTempDir('git-root');
    const work = await cliTempDir('git-work');
    const g = (...args: string[]) => execFileSync('git', ['-C', work, '-c', 'user.name=t', '-c', 'user.email=t@e', ...args], { encoding: 'utf8' }).trim();
    g('init', '--quiet', '-b', 'main');
    await mkdir(join(work, 'app'));
    const containerfile = `FROM ${base}\nARG FLAVOUR\nCOPY msg.txt /msg.txt\nLABEL flavour=$FLAVOUR\n`;
    await writeFile(join(work, 'app', 'Containerfile'), containerfile);
    await writeFile(join(work, 'app', 'msg.txt'), 'signed\n');
    g('add', '.');
    g('commit', '--quiet', '-m', 'app');
    const commit = g('rev-parse', 'HEAD');
    execFileSync('git', ['clone', '--quiet', '--bare', work, join(root, 'app.git')]);
    const git = await startGitServer(root, 'builder', 'gitpw');
    try {
      await ok(cp, 'POST', `/api/v1/namespaces/${NS}/secrets`, {
        metadata: { name: 'git-creds' },
        type: 'kubernetes.io/basic-auth',
        stringData: { username: 'builder', password: 'gitpw' },
      });
      const created = await create('signed', {
        source: { git: { url: `${git.url}/app.git`, revision: 'main', credentials: { name: 'git-creds' } } },
        contextDir: 'app',
        buildArgs: [{ name: 'FLAVOUR', value: 'plain' }],
        output: out('out/signed'),
        signing: { secretRef: { name: 'cosign-key' } },
        sbom: true,
      });
      const b = await waitFor('Succeeded', () => getBuild('signed'), done(created.metadata.generation, 'Succeeded'), 120_000);
      const digest = await registryDigest(reg.url, 'out/signed', '1');
      const st = b!.status!;
      expect(st.imageDigest).toBe(digest);
      expect(st.sourceCommit).toBe(commit);

      // status.signatureDigest is the cosign signature manifest in the registry.
      expect(st.signatureDigest).toBe(await registryDigest(reg.url, 'out/signed', `sha256-${digest!.slice(7)}.sig`));
      expect(st.attestations!.map((a) => [a.kind, a.predicateType, a.subject])).toEqual([
        ['sbom', 'https://spdx.dev/Document', digest],
        ['provenance', 'https://slsa.dev/provenance/v1', digest],
      ]);
      for (const a of st.attestations!) {
        const m = await fetch(`${reg.url}/v2/out/signed/manifests/${a.digest}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
        expect(m.status).toBe(200);
        expect(((await m.json()) as { subject: { digest: string } }).subject.digest).toBe(digest);
      }

      // The signature verifies against the registry with the public key: ours and the real cosign.
      const image = `${reg.host}/out/signed:1`;
      const v = await stevedore(['verify', '--key', `${keys}.pub`, ...noTls, `docker://${image}`]);
      expect(v.code, v.stderr).toBe(0);
      const c = await cosign(['verify', '--key', `${keys}.pub`, '--insecure-ignore-tlog', '--allow-insecure-registry', image]);
      expect(c.code, c.stderr).toBe(0);
      expect(JSON.parse(c.stdout)[0].critical.image['docker-manifest-digest']).toBe(digest);

      // The provenance names the Git source and the commit built, the Containerfile and the build args.
      const prov = await stevedore(['verify-attestation', '--key', `${keys}.pub`, '--type', 'slsaprovenance', ...noTls, `docker://${image}`]);
      expect(prov.code, prov.stderr).toBe(0);
      const statement = jsonLines(prov.stdout)[0]!.statement as { predicate: { buildDefinition: { externalParameters: Record<string, unknown> } } };
      const { createHash } = await import('node:crypto');
      expect(statement.predicate.buildDefinition.externalParameters).toMatchObject({
        source: { uri: `git+${git.url}/app.git`, digest: { gitCommit: commit } },
        containerfile: { path: 'Containerfile', digest: { sha256: createHash('sha256').update(containerfile).digest('hex') } },
        buildArgs: { FLAVOUR: 'plain' },
      });
      const sbom = await stevedore(['verify-attestation', '--key', `${keys}.pub`, '--type', 'spdx', ...noTls, `docker://${image}`]);
      expect(sbom.code, sbom.stderr).toBe(0);

      // The key reaches the build container only, through a Secret volume; no value is in the Pod spec.
      const pod = (await ok(cp, 'GET', `/api/v1/namespaces/${NS}/pods/${st.podName}`)) as V1Pod;
      expect(pod.spec!.volumes!.find((vol) => vol.name === 'signing')!.secret).toEqual({
        secretName: 'cosign-key',
        defaultMode: 0o400,
        items: [
          { key: 'cosign.key', path: 'cosign.key' },
          { key: 'cosign.password', path: 'cosign.password' },
        ],
      });
      expect(pod.spec!.initContainers!.every((ic) => !ic.volumeMounts!.some((m) => m.name === 'signing'))).toBe(true);
      expect(pod.spec!.containers[0]!.volumeMounts).toContainEqual({ name: 'signing', mountPath: '/var/run/stevedore/signing', readOnly: true });
      const podText = JSON.stringify(pod);
      expect(podText).not.toContain(PASSWORD);
      expect(podText).not.toContain('PRIVATE KEY');
    } finally {
      git.close();
    }
  }, 180_000);

  it('attaches a CycloneDX SBOM without provenance when provenance is false', async () => {
    const created = await create('cdx', {
      source: { inline: { containerfile: `FROM ${base}\nLABEL kind=cdx\n` } },
      output: out('out/cdx'),
      signing: { secretRef: { name: 'cosign-key' } },
      sbom: true,
      sbomFormat: 'cyclonedx',
      provenance: false,
    });
    const b = await waitFor('Succeeded', () => getBuild('cdx'), done(created.metadata.generation, 'Succeeded'), 90_000);
    expect(b!.status!.attestations!.map((a) => [a.kind, a.predicateType])).toEqual([['sbom', 'https://cyclonedx.org/bom']]);
    const c = await cosign(['verify', '--key', `${keys}.pub`, '--insecure-ignore-tlog', '--allow-insecure-registry', `${reg.host}/out/cdx:1`]);
    expect(c.code, c.stderr).toBe(0);
  }, 120_000);

  it('refuses at admission an SBOM or provenance without signing, and an unknown SBOM format', async () => {
    const spec = { source: { inline: { containerfile: 'FROM scratch\n' } }, output: out('out/refused') };
    const post = (name: string, extra: Record<string, unknown>) =>
      cp.request('POST', buildsPath(), {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ apiVersion: API_VERSION, kind: 'ImageBuild', metadata: { name }, spec: { ...spec, ...extra } }),
      });
    const sbom = await post('no-key-sbom', { sbom: true });
    expect(sbom.status).toBe(422);
    expect(sbom.body).toContain('sbom needs signing.secretRef: attestations are signed');
    const prov = await post('no-key-prov', { provenance: true });
    expect(prov.status).toBe(422);
    expect(prov.body).toContain('provenance needs signing.secretRef: attestations are signed');
    const fmt = await post('bad-format', { sbom: true, sbomFormat: 'xml', signing: { secretRef: { name: 'cosign-key' } } });
    expect(fmt.status).toBe(422);
    expect(JSON.parse(fmt.body).message).toContain(`spec.sbomFormat: Unsupported value: "xml"`);
    const off = await post('sbom-off', { sbom: false, provenance: false });
    expect(off.status, off.body).toBe(201);
  });

  it('waits with CredentialsNotFound while the signing Secret lacks cosign.password, and builds once it has it', async () => {
    await signingSecret('half-key', { 'cosign.key': await readFile(`${keys}.key`, 'utf8') });
    const created = await create('half', {
      source: { inline: { containerfile: `FROM ${base}\nLABEL kind=half\n` } },
      output: out('out/half'),
      signing: { secretRef: { name: 'half-key' } },
    });
    const waiting = await waitFor(
      'CredentialsNotFound',
      () => getBuild('half'),
      (b) => ready(b)?.reason === 'CredentialsNotFound',
      30_000,
    );
    expect(ready(waiting)!.message).toBe(
      `Secret ${NS}/half-key (signing key) has no cosign.password (cosign generate-key-pair k8s://${NS}/half-key writes both)`,
    );
    await ok(cp, 'PATCH', `/api/v1/namespaces/${NS}/secrets/half-key`, { stringData: { 'cosign.password': PASSWORD } }, 'application/merge-patch+json');
    const b = await waitFor('Succeeded', () => getBuild('half'), done(created.metadata.generation, 'Succeeded'), 90_000);
    // Signing without sbom: the signature and the default provenance (an inline source has no URI).
    expect(b!.status!.signatureDigest).toMatch(/^sha256:/);
    expect(b!.status!.attestations!.map((a) => a.kind)).toEqual(['provenance']);
  }, 120_000);
});
