/**
 * buildah's `build --manifest LIST` and `--all-platforms` through the real `stevedore build`: each
 * built platform lands in a local manifest list (created when missing; a rebuilt platform replaces
 * its entry), the list is pushed with `stevedore manifest push` and podman 4.3 reads it; and
 * `--all-platforms` builds the platforms every base image offers. Real registry, no RUN step (the
 * arm64 build needs no emulation on this machine).
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { parseImageName } from '../../src/transports/index.js';
import { cleanupCli, cliTempDir, stevedore } from '../cli/stevedore.js';
import { makeIndex } from '../../hack/lib/harness/images.js';
import { runCommand } from '../../hack/lib/harness/procs.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';

let reg: TestRegistry;
let work: string;
let multi: string;
let amd64Only: string;

type List = { mediaType: string; manifests: { digest: string; mediaType: string; platform?: { os: string; architecture: string } }[] };

async function push(name: string, platforms: string[]): Promise<string> {
  const idx = await makeIndex(join(work, name), 'latest', platforms, { seed: `manifest-${name}` });
  const ref = `${reg.host}/base/${name}:1`;
  await copyReference(parseImageName(idx.ociRef), parseImageName(`docker://${ref}`), { all: true, destContext: { tlsVerify: false } });
  return ref;
}

let n = 0;
async function context(containerfile: string): Promise<string> {
  const dir = join(work, `ctx-${++n}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'Containerfile'), containerfile);
  return dir;
}

const root = () => join(work, 'store');
const build = (args: string[]) => stevedore(['build', '--root', root(), '--tls-verify=false', ...args], { timeoutMs: 120_000 });
const inspect = async (list: string): Promise<List> => {
  const r = await stevedore(['manifest', 'inspect', '--root', root(), list]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as List;
};
const platformsOf = (l: List) => l.manifests.map((m) => `${m.platform?.os}/${m.platform?.architecture}`).sort();

beforeAll(async () => {
  reg = await startRegistry({ name: 'build-manifest' });
  work = await cliTempDir('build-manifest');
  multi = await push('multi', ['linux/amd64', 'linux/arm64']);
  amd64Only = await push('amd64-only', ['linux/amd64']);
}, 60_000);

afterAll(async () => {
  await reg?.stop();
  await cleanupCli();
});

describe('build --manifest', () => {
  it("adds each built platform to a new list, replaces a rebuilt platform's entry, and the pushed list reads in podman", async () => {
    const dir = await context(`FROM ${multi}\nARG TARGETARCH\nLABEL arch=$TARGETARCH\n`);
    const r = await build(['--manifest', 'app:list', '--platform', 'linux/amd64,linux/arm64', dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Added sha256:[0-9a-f]{64} \(linux\/amd64\) to manifest list localhost\/app:list/);
    const first = await inspect('app:list');
    expect(first.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(platformsOf(first)).toEqual(['linux/amd64', 'linux/arm64']);
    // No scratch layout in the store: the images went straight into the list's layout.
    expect((await readdir(join(root(), 'tmp')).catch(() => [] as string[])).filter((f) => f.startsWith('manifest-'))).toEqual([]);

    // arm64 again, changed: its entry is replaced, amd64's stays.
    const changed = await context(`FROM ${multi}\nARG TARGETARCH\nLABEL arch=$TARGETARCH changed=yes\n`);
    const again = await build(['--manifest', 'app:list', '--platform', 'linux/arm64', changed]);
    expect(again.code, again.stderr).toBe(0);
    const second = await inspect('app:list');
    expect(platformsOf(second)).toEqual(['linux/amd64', 'linux/arm64']);
    const digestOf = (l: List, arch: string) => l.manifests.find((m) => m.platform?.architecture === arch)!.digest;
    expect(digestOf(second, 'amd64')).toBe(digestOf(first, 'amd64'));
    expect(digestOf(second, 'arm64')).not.toBe(digestOf(first, 'arm64'));

    // Pushed with every image; podman 4.3 reads the list from the registry.
    const pushed = await stevedore(['manifest', 'push', '--root', root(), '--tls-verify=false', 'app:list', `docker://${reg.host}/out/app:multi`]);
    expect(pushed.code, pushed.stderr).toBe(0);
    const pdir = join(work, 'podman');
    await mkdir(pdir, { recursive: true });
    const conf = join(pdir, 'registries.conf');
    await writeFile(conf, `[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`);
    const p = await runCommand(
      'podman',
      ['--root', join(pdir, 'root'), '--runroot', join(pdir, 'run'), '--storage-driver', 'vfs', 'manifest', 'inspect', `${reg.host}/out/app:multi`],
      {
        timeoutMs: 120_000,
        env: { ...process.env, CONTAINERS_REGISTRIES_CONF: conf },
      },
    );
    expect(p.code, p.stderr).toBe(0);
    const theirs = JSON.parse(p.stdout) as List;
    expect(theirs.manifests.map((m) => [m.digest, m.platform?.architecture]).sort()).toEqual(
      second.manifests.map((m) => [m.digest, m.platform?.architecture]).sort(),
    );
    // Each image's layers went out compressed.
    for (const m of theirs.manifests) {
      const res = await fetch(`${reg.url}/v2/out/app/manifests/${m.digest}`, { headers: { accept: m.mediaType } });
      const img = (await res.json()) as { layers: { mediaType: string }[] };
      expect(img.layers.map((l) => l.mediaType)).toEqual(img.layers.map(() => 'application/vnd.oci.image.layer.v1.tar+gzip'));
    }
  });

  it('--all-platforms builds every platform all the bases offer', async () => {
    const both = await context(`FROM ${multi}\nARG TARGETARCH\nLABEL arch=$TARGETARCH\n`);
    const r = await build(['--all-platforms', '--manifest', 'all:both', both]);
    expect(r.code, r.stderr).toBe(0);
    expect(platformsOf(await inspect('all:both'))).toEqual(['linux/amd64', 'linux/arm64']);

    // A stage on an amd64-only base narrows the set to amd64.
    const narrowed = await context(`FROM ${amd64Only} AS tool\nLABEL t=1\nFROM ${multi}\nCOPY --from=tool /. /tool/\n`);
    const r2 = await build(['--all-platforms', '--manifest', 'all:narrowed', narrowed]);
    expect(r2.code, r2.stderr).toBe(0);
    expect(platformsOf(await inspect('all:narrowed'))).toEqual(['linux/amd64']);

    const scratch = await context('FROM scratch\nLABEL a=b\n');
    const r3 = await build(['--all-platforms', scratch]);
    expect(r3.code).toBe(125);
    expect(r3.stderr).toContain('--all-platforms: the build has no base image to take platforms from');
    const r4 = await build(['--all-platforms', '--platform', 'linux/amd64', both]);
    expect(r4.code).toBe(125);
    expect(r4.stderr).toContain('give --platform (or --os/--arch/--variant) or --all-platforms, not both');
  });
});
