/**
 * `stevedore manifest` end to end: a list assembled from two per-arch images (one from a registry,
 * one from an OCI layout), annotated, pushed with every image; skopeo 1.9 and podman 4.3 read what
 * was pushed, and Stevedore reads a list podman pushed.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeRandomImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { runCommand } from '../../hack/lib/harness/procs.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { cleanupCli, cliTempDir, stevedore } from './stevedore.js';

let reg: TestRegistry;
let dir: string;
let root: string;
let amd: FixtureImage;
let arm: FixtureImage;

const sd = (args: string[]) => stevedore(['manifest', ...args, '--root', root]);

beforeAll(async () => {
  reg = await startRegistry({ name: 'manifest' });
  dir = await cliTempDir('manifest');
  root = join(dir, 'store');
  amd = await makeRandomImage({ layers: 1, layerSize: 4096, platform: 'linux/amd64', layoutDir: join(dir, 'amd'), ref: 'amd64' });
  arm = await makeRandomImage({ layers: 2, layerSize: 4096, platform: 'linux/arm64/v8', layoutDir: join(dir, 'arm'), ref: 'arm64' });
  const r = await stevedore(['copy', '-q', amd.ociRef, `docker://${reg.host}/app:amd64`]);
  expect(r.code, r.stderr).toBe(0);
}, 180_000);

afterAll(async () => {
  await reg?.stop();
  await cleanupCli();
});

describe('stevedore manifest', () => {
  it('create, add (registry and OCI layout), annotate, inspect, push --all: skopeo inspect --raw shows the index and every image is there', async () => {
    const created = await sd(['create', 'mylist']);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect((await sd(['create', 'mylist'])).stderr).toMatch(/already exists/);
    const a = await sd(['add', 'mylist', `docker://${reg.host}/app:amd64`, '--tls-verify=false']);
    expect(a.code, a.stderr).toBe(0);
    const b = await sd(['add', 'mylist', arm.ociRef, '--annotation', 'org.example.flavour=arm']);
    expect(b.code, b.stderr).toBe(0);
    const annotate = await sd(['annotate', 'mylist', arm.descriptor.digest, '--annotation', 'org.example.note=annotated', '--os-version', '6.1']);
    expect(annotate.code, annotate.stderr).toBe(0);
    const inspect = await sd(['inspect', 'mylist']);
    expect(inspect.code, inspect.stderr).toBe(0);
    const index = JSON.parse(inspect.stdout);
    expect(index).toEqual({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { mediaType: amd.descriptor.mediaType, digest: amd.descriptor.digest, size: amd.descriptor.size, platform: { architecture: 'amd64', os: 'linux' } },
        {
          mediaType: arm.descriptor.mediaType,
          digest: arm.descriptor.digest,
          size: arm.descriptor.size,
          platform: { architecture: 'arm64', os: 'linux', variant: 'v8', 'os.version': '6.1' },
          annotations: { 'org.example.flavour': 'arm', 'org.example.note': 'annotated' },
        },
      ],
    });
    const digestFile = join(dir, 'pushed.digest');
    const push = await sd(['push', 'mylist', `docker://${reg.host}/multi:1`, '--tls-verify=false', '--digestfile', digestFile]);
    expect(push.code, push.stderr).toBe(0);
    const raw = await runCommand('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/multi:1`]);
    expect(raw.code, raw.stderr).toBe(0);
    expect(JSON.parse(raw.stdout)).toEqual(index);
    expect(await readFile(digestFile, 'utf8')).toMatch(/^sha256:/);
    for (const img of [amd, arm]) {
      const child = await runCommand('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/multi@${img.descriptor.digest}`]);
      expect(child.code, child.stderr).toBe(0);
    }
    // The list alone (podman's --all=false): where its images are already, and refused where they are not.
    const only = await sd(['push', '--all=false', 'mylist', `docker://${reg.host}/multi:listonly`, '--tls-verify=false']);
    expect(only.code, only.stderr).toBe(0);
    expect(JSON.parse((await runCommand('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/multi:listonly`])).stdout)).toEqual(index);
    const missing = await sd(['push', '--all=false', 'mylist', `docker://${reg.host}/empty:1`, '--tls-verify=false']);
    expect(missing.code).toBe(125);
    expect(missing.stderr).toContain(`does not hold ${amd.descriptor.digest} (linux/amd64), which the list names; push with --all`);
    expect((await runCommand('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/empty:1`])).code).not.toBe(0);
    // The same list pushed as a Docker manifest list.
    const v2 = await sd(['push', 'mylist', `docker://${reg.host}/multi:docker`, '--tls-verify=false', '--format', 'v2s2']);
    expect(v2.code, v2.stderr).toBe(0);
    const rawV2 = JSON.parse((await runCommand('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/multi:docker`])).stdout);
    expect(rawV2.mediaType).toBe('application/vnd.docker.distribution.manifest.list.v2+json');
    expect(rawV2.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture)).toEqual(['amd64', 'arm64']);
  });

  it('podman manifest inspect reads the pushed list, and stevedore reads a list podman made and pushed', async () => {
    const pdir = join(dir, 'podman');
    await mkdir(pdir);
    // podman 4.3's manifest inspect has no --tls-verify: the harness registry is marked insecure here.
    const conf = join(pdir, 'registries.conf');
    await writeFile(conf, `[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`);
    const podman = (args: string[]) =>
      runCommand('podman', ['--root', join(pdir, 'root'), '--runroot', join(pdir, 'run'), '--storage-driver', 'vfs', ...args], {
        timeoutMs: 120_000,
        env: { ...process.env, CONTAINERS_REGISTRIES_CONF: conf },
      });
    const theirs = await podman(['manifest', 'inspect', `${reg.host}/multi:1`]);
    expect(theirs.code, theirs.stderr).toBe(0);
    const seen = JSON.parse(theirs.stdout) as { manifests: Array<{ digest: string; platform: { architecture: string } }> };
    expect(seen.manifests.map((m) => [m.digest, m.platform.architecture])).toEqual([
      [amd.descriptor.digest, 'amd64'],
      [arm.descriptor.digest, 'arm64'],
    ]);
    expect((await podman(['manifest', 'create', 'plist'])).code).toBe(0);
    const add = await podman(['manifest', 'add', '--tls-verify=false', '--arch', 'riscv64', 'plist', `docker://${reg.host}/app:amd64`]);
    expect(add.code, add.stderr).toBe(0);
    const ppush = await podman(['manifest', 'push', '--all', '--tls-verify=false', 'plist', `docker://${reg.host}/from-podman:1`]);
    expect(ppush.code, ppush.stderr).toBe(0);
    const ours = await sd(['inspect', `docker://${reg.host}/from-podman:1`, '--tls-verify=false']);
    expect(ours.code, ours.stderr).toBe(0);
    const list = JSON.parse(ours.stdout) as { manifests: Array<{ platform: { architecture: string } }> };
    expect(list.manifests.map((m) => m.platform.architecture)).toEqual(['riscv64']);
    // ...and takes it as the source of an add with --all.
    expect((await sd(['create', 'fromp'])).code).toBe(0);
    const addAll = await sd(['add', '--all', 'fromp', `docker://${reg.host}/from-podman:1`, '--tls-verify=false']);
    expect(addAll.code, addAll.stderr).toBe(0);
    expect(JSON.parse((await sd(['inspect', 'fromp'])).stdout).manifests[0].platform.architecture).toBe('riscv64');
  });

  it('adds an image of the local store by its name (as stevedore images lists it)', async () => {
    const { ImageStore } = await import('../../src/runtime/store/index.js');
    const store = await ImageStore.open(root);
    await store.pull(arm.ociRef, { policy: 'always' });
    const name = (await store.list()).map((i) => i.name).find((n) => n.startsWith('localhost/arm'))!;
    expect(name).toBe('localhost/arm:arm64');
    expect((await sd(['create', 'fromstore', name])).code).toBe(0);
    const list = JSON.parse((await sd(['inspect', 'fromstore'])).stdout) as { manifests: Array<{ digest: string; platform: { architecture: string } }> };
    expect(list.manifests.map((m) => [m.digest, m.platform.architecture])).toEqual([[arm.descriptor.digest, 'arm64']]);
  });

  it('lists in an OCI layout, a Docker-format list refusing annotations, remove, rm and exists', async () => {
    const layoutList = `oci:${join(dir, 'lists')}:multi`;
    expect((await sd(['create', layoutList, amd.ociRef, arm.ociRef])).code).toBe(0);
    const idx = JSON.parse(await readFile(join(dir, 'lists', 'index.json'), 'utf8')) as {
      manifests: Array<{ mediaType: string; annotations: Record<string, string> }>;
    };
    expect(idx.manifests).toEqual([
      expect.objectContaining({ mediaType: 'application/vnd.oci.image.index.v1+json', annotations: { 'org.opencontainers.image.ref.name': 'multi' } }),
    ]);
    const skopeoRaw = await runCommand('skopeo', ['inspect', '--raw', layoutList]);
    expect(JSON.parse(skopeoRaw.stdout).manifests).toHaveLength(2);
    expect((await sd(['remove', layoutList, amd.descriptor.digest])).code).toBe(0);
    expect(JSON.parse((await sd(['inspect', layoutList])).stdout).manifests.map((m: { digest: string }) => m.digest)).toEqual([arm.descriptor.digest]);
    const notThere = await sd(['remove', layoutList, amd.descriptor.digest]);
    expect(notThere.code).toBe(125);
    expect(notThere.stderr).toContain(`has no entry ${amd.descriptor.digest}`);
    const notDigest = await sd(['annotate', layoutList, 'arm64', '--arch', 'x']);
    expect(notDigest.stderr).toMatch(/is not a digest/);

    expect((await sd(['create', '--format', 'v2s2', 'dockerlist', amd.ociRef])).code).toBe(0);
    expect(JSON.parse((await sd(['inspect', 'dockerlist'])).stdout).mediaType).toBe('application/vnd.docker.distribution.manifest.list.v2+json');
    const ann = await sd(['add', '--annotation', 'a=b', 'dockerlist', arm.ociRef]);
    expect(ann.code).toBe(125);
    expect(ann.stderr).toMatch(/Docker manifest list, which has no annotations/);

    expect((await sd(['exists', 'dockerlist'])).code).toBe(0);
    const rm = await sd(['rm', 'dockerlist']);
    expect(rm.stdout).toMatch(/^Untagged: localhost\/dockerlist:latest\nDeleted: [0-9a-f]{64}\n$/);
    expect((await sd(['exists', 'dockerlist'])).code).toBe(1);
    const gone = await sd(['inspect', 'oci:' + join(dir, 'lists') + ':nothing']);
    expect(gone.code).toBe(125);
    expect(gone.stderr).toMatch(/no such manifest list/);
    const wrongPlatform = await sd(['add', '--arch', 's390x', 'mylist', `docker://${reg.host}/multi:1`, '--tls-verify=false']);
    expect(wrongPlatform.code).toBe(125);
    expect(wrongPlatform.stderr).toMatch(/has no image for platform linux\/s390x \(it has: linux\/amd64, linux\/arm64\/v8\); use --all/);
  });
});
