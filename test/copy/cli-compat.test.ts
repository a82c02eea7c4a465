/**
 * `stevedore copy` and `stevedore sync` with skopeo's flags (issue 16, "drop-in for skopeo users"),
 * run as the built CLI against real registries (and a fault proxy where a fault is needed).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { parseImageName } from '../../src/transports/index.js';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RegistryClient } from '../../src/registry/client.js';
import { headManifest } from '../../src/registry/manifests.js';
import { listTags } from '../../src/registry/tags.js';
import { makeIndex, makeRandomImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { skopeo } from '../harness/skopeo.js';
import { cosign } from '../sign/cosign.js';
import { OciLayout } from '../../src/oci/layout.js';
import { parseReference } from '../../src/oci/reference.js';
import { generateKeyPair, loadPrivateKey } from '../../src/sign/keys.js';
import { signImage } from '../../src/sign/sign.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { cleanupCli, stevedore } from '../cli/stevedore.js';

const temps = new TempDirs();
let reg: TestRegistry;
let proxy: FaultProxy;
let image: FixtureImage;
/** Destinations: one written by skopeo, one by stevedore, compared. */
let bySkopeo: TestRegistry;
let byUs: TestRegistry;
let indexDigest: string;
const clients: RegistryClient[] = [];

beforeAll(async () => {
  reg = await startRegistry({ name: 'cli-compat' });
  proxy = await startFaultProxy(reg.url);
  image = await makeRandomImage({ layers: 1, layerSize: 4096, layoutDir: await temps.make('img'), ref: 'x' });
  await copyReference(parseImageName(image.ociRef), parseImageName(`docker://${reg.host}/src/app:1`));
  [bySkopeo, byUs] = await Promise.all([startRegistry({ name: 'compat-skopeo' }), startRegistry({ name: 'compat-us' })]);
  // team/app: 1 and latest (one image), 2 (an index of two platforms), 2-rc.
  await copyReference(parseImageName(image.ociRef), parseImageName(`docker://${reg.host}/team/app:1`));
  await copyReference(parseImageName(image.ociRef), parseImageName(`docker://${reg.host}/team/app:latest`));
  const idx = await makeIndex(await temps.make('idx'), 'x', ['linux/amd64', 'linux/arm64/v8'], { layers: 1, layerSize: 2048 });
  indexDigest = idx.descriptor.digest;
  for (const tag of ['2', '2-rc']) await copyReference(parseImageName(idx.ociRef), parseImageName(`docker://${reg.host}/team/app:${tag}`), { all: true });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await proxy?.stop();
  await Promise.all([reg?.stop(), bySkopeo?.stop(), byUs?.stop()]);
  await temps.cleanup();
  await cleanupCli();
});

describe('--retry-times and --retry-delay (skopeo names)', () => {
  it('copy retries as many times as asked, with the fixed delay given', async () => {
    proxy.addFault({ method: 'GET', pathRegex: '/src/app/manifests/1', kind: 'status', status: 503, times: 3 });
    const few = await stevedore([
      'copy',
      '-q',
      '--retry-times',
      '1',
      '--retry-delay',
      '10ms',
      `docker://${proxy.host}/src/app:1`,
      `docker://${reg.host}/dst/app:1`,
    ]);
    expect(few.code).not.toBe(0);
    expect(few.stderr).toMatch(/503/);
    expect(
      proxy
        .hits('/src/app/manifests/1')
        .filter((h) => h.method === 'GET')
        .map((h) => h.status),
    ).toEqual([503, 503]);
    proxy.clearHits();
    const started = Date.now();
    const enough = await stevedore([
      'copy',
      '-q',
      '--retry-times',
      '3',
      '--retry-delay',
      '200ms',
      `docker://${proxy.host}/src/app:1`,
      `docker://${reg.host}/dst/app:1`,
    ]);
    expect(enough.code, enough.stderr).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(
      proxy
        .hits('/src/app/manifests/1')
        .filter((h) => h.method === 'GET')
        .map((h) => h.status),
    ).toEqual([503, 200]);
    proxy.clearFaults();
  });

  it('sync takes the same flags; a bad value is refused naming the flag', async () => {
    proxy.addFault({ method: 'HEAD', pathRegex: '/src/app/manifests/1', kind: 'status', status: 503, times: 1 });
    const ok = await stevedore([
      'sync',
      '--src',
      'docker',
      '--dest',
      'docker',
      '--retry-times',
      '2',
      '--retry-delay',
      '1ms',
      `${proxy.host}/src/app:1`,
      `${reg.host}/synced`,
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    const bad = await stevedore(['sync', '--src', 'docker', '--dest', 'docker', '--retry-delay', 'soon', `${reg.host}/src/app:1`, `${reg.host}/synced`]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--retry-delay: "soon" is not a duration');
  });
});

function client(host: string): RegistryClient {
  const c = new RegistryClient({ registry: host });
  clients.push(c);
  return c;
}

/** Every tag of `repo` at `host` with its digest, or {} when the repository does not exist. */
async function contents(host: string, repo: string): Promise<Record<string, string | undefined>> {
  const c = client(host);
  const tags = await listTags(c, repo).catch(() => [] as string[]);
  const out: Record<string, string | undefined> = {};
  for (const t of tags.sort()) out[t] = (await headManifest(c, repo, t))?.digest;
  return out;
}

/**
 * skopeo command lines run as they are by skopeo and, with the destination host swapped, by
 * stevedore: same exit status, and the same tags and digests at the destination.
 */
describe('skopeo command lines, side by side', () => {
  const TLS = ['--src-tls-verify=false', '--dest-tls-verify=false'];
  const cases: { name: string; args: (src: string, dest: string) => string[]; repos: string[] }[] = [
    {
      name: 'sync --all of a repository (destination named by its last path element)',
      args: (src, dest) => ['sync', '--src', 'docker', '--dest', 'docker', '--all', ...TLS, `${src}/team/app`, `${dest}/all`],
      repos: ['all/app'],
    },
    {
      name: 'sync --src-no-creds --dest-no-creds --retry-times 2 --preserve-digests',
      args: (src, dest) => [
        'sync',
        '--src',
        'docker',
        '--dest',
        'docker',
        '-a',
        '--src-no-creds',
        '--dest-no-creds',
        '--retry-times',
        '2',
        '--preserve-digests',
        ...TLS,
        `${src}/team/app:latest`,
        `${dest}/anon`,
      ],
      repos: ['anon/app'],
    },
    {
      name: 'copy --all of an index',
      args: (src, dest) => ['copy', '--all', ...TLS, `docker://${src}/team/app:2`, `docker://${dest}/copied/app:2`],
      repos: ['copied/app'],
    },
    {
      name: 'copy --multi-arch all --src-no-creds --retry-times 1',
      args: (src, dest) => [
        'copy',
        '--multi-arch',
        'all',
        '--src-no-creds',
        '--retry-times',
        '1',
        ...TLS,
        `docker://${src}/team/app:2`,
        `docker://${dest}/multi/app:2`,
      ],
      repos: ['multi/app'],
    },
    {
      name: 'sync of a repository that does not exist fails',
      args: (src, dest) => ['sync', '--src', 'docker', '--dest', 'docker', ...TLS, `${src}/team/missing`, `${dest}/missing`],
      repos: ['missing/missing'],
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const theirs = await skopeo(c.args(reg.host, bySkopeo.host));
      const ours = await stevedore(c.args(reg.host, byUs.host));
      expect(ours.code === 0, `skopeo: ${theirs.code} ${theirs.stderr}\nstevedore: ${ours.code} ${ours.stderr}`).toBe(theirs.code === 0);
      for (const r of c.repos) {
        const repo = r.replace('SRC', reg.host);
        const want = await contents(bySkopeo.host, repo);
        expect(await contents(byUs.host, repo), repo).toEqual(want);
        if (theirs.code === 0) expect(Object.keys(want).length, `skopeo wrote nothing to ${repo}`).toBeGreaterThan(0);
      }
    });
  }

  for (const scoped of [false, true]) {
    it(`sync -s docker -d dir${scoped ? ' --scoped' : ''} names each image as skopeo does, with the same files`, async () => {
      const [a, b] = [await temps.make('dir-skopeo'), await temps.make('dir-us')];
      const args = (dir: string) => [
        'sync',
        '-s',
        'docker',
        '-d',
        'dir',
        ...(scoped ? ['--scoped'] : []),
        '--src-tls-verify=false',
        `${reg.host}/team/app:1`,
        dir,
      ];
      const theirs = await skopeo(args(a));
      const ours = await stevedore(args(b));
      expect(theirs.code, theirs.stderr).toBe(0);
      expect(ours.code, ours.stderr).toBe(0);
      const tree = async (dir: string) => (await readdir(dir, { recursive: true })).sort();
      expect(await tree(b)).toEqual(await tree(a));
      expect((await tree(a)).some((f) => f.endsWith('manifest.json'))).toBe(true);
    });
  }

  it('a YAML source with images-by-tag-regex selects the same tags', async () => {
    const file = join(await temps.make('yaml'), 'sync.yaml');
    await writeFile(file, `${reg.host}:\n  tls-verify: false\n  images-by-tag-regex:\n    team/app: ^2\n`);
    const theirs = await skopeo(['sync', '--src', 'yaml', '--dest', 'docker', '--all', '--dest-tls-verify=false', file, `${bySkopeo.host}/yaml`]);
    const ours = await stevedore(['sync', '--src', 'yaml', '--dest', 'docker', '--all', '--dest-tls-verify=false', file, `${byUs.host}/yaml`]);
    expect(theirs.code, theirs.stderr).toBe(0);
    expect(ours.code, ours.stderr).toBe(0);
    const want = await contents(bySkopeo.host, 'yaml/app');
    expect(Object.keys(want)).toEqual(['2', '2-rc']);
    expect(await contents(byUs.host, 'yaml/app')).toEqual(want);
    expect(want['2']).toBe(indexDigest);
  });

  it('inspect --format and list-tags --no-creds print what skopeo prints', async () => {
    for (const args of [
      ['inspect', '--tls-verify=false', '--no-creds', '--format', '{{.Digest}} {{.Os}}/{{.Architecture}} {{.RepoTags}}', `docker://${reg.host}/team/app:1`],
      ['inspect', '--tls-verify=false', '-n', '--retry-times', '1', '--format', '{{.Layers}} {{.Labels}} {{.Created}}', `docker://${reg.host}/team/app:1`],
      ['list-tags', '--tls-verify=false', '--no-creds', `docker://${reg.host}/team/app`],
    ]) {
      const theirs = await skopeo(args);
      const ours = await stevedore(args);
      expect(theirs.code, theirs.stderr).toBe(0);
      expect(ours.code, ours.stderr).toBe(0);
      if (args[0] === 'list-tags') expect(JSON.parse(ours.stdout).Tags.sort()).toEqual(JSON.parse(theirs.stdout).Tags.sort());
      else expect(ours.stdout).toBe(theirs.stdout);
    }
  });

  it('air gap: --dest oci exports, --src oci imports the layout into another registry (same digests, unchanged tags skipped)', async () => {
    const dir = await temps.make('airgap');
    const out = await stevedore(['sync', '--src', 'docker', '--dest', 'oci', '--src-tls-verify=false', `${reg.host}/team/app`, dir]);
    expect(out.code, out.stderr).toBe(0);
    const imp = await stevedore(['sync', '--src', 'oci', '--dest', 'docker', '-o', 'json', join(dir, 'app'), `${byUs.host}/imported`]);
    expect(imp.code, imp.stderr + imp.stdout).toBe(0);
    const want = await contents(reg.host, 'team/app');
    expect(await contents(byUs.host, 'imported/app')).toEqual(want);
    const again = await stevedore(['sync', '--src', 'oci', '--dest', 'docker', '-o', 'json', join(dir, 'app'), `${byUs.host}/imported`]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.trim().split('\n').at(-1)).toBe(JSON.stringify({ summary: { copied: 0, skipped: Object.keys(want).length, failed: 0, pruned: 0 } }));
  });

  it('air gap keeps signatures: a cosign signature exported into the layout is imported, and cosign verifies it at the far end', async () => {
    const keyDir = await temps.make('airgap-keys');
    const pair = generateKeyPair('pw');
    await writeFile(join(keyDir, 'k.key'), pair.privatePem);
    await writeFile(join(keyDir, 'k.pub'), pair.publicPem);
    await copyReference(parseImageName(image.ociRef), parseImageName(`docker://${reg.host}/signed/app:1`));
    const signed = await signImage(parseReference(`${reg.host}/signed/app:1`), await loadPrivateKey(join(keyDir, 'k.key'), 'pw'));
    const sigTag = `sha256-${signed.digest.slice('sha256:'.length)}.sig`;
    const dir = await temps.make('airgap-signed');
    const out = await stevedore(['sync', '--src', 'docker', '--dest', 'oci', `${reg.host}/signed/app`, dir]);
    expect(out.code, out.stderr).toBe(0);
    // One image item: the signature travelled as a ref name beside it, not as an image of its own.
    expect(out.stdout.match(/^copied /gm)).toHaveLength(1);
    const refs = (await (await OciLayout.open(join(dir, 'app'))).refNames()).sort();
    expect(refs).toEqual(['1', sigTag].sort());
    const imp = await stevedore(['sync', '--src', 'oci', '--dest', 'docker', join(dir, 'app'), `${byUs.host}/far`]);
    expect(imp.code, imp.stderr).toBe(0);
    expect((await listTags(client(byUs.host), 'far/app')).sort()).toEqual(['1', sigTag].sort());
    const v = await cosign(['verify', '--key', join(keyDir, 'k.pub'), '--insecure-ignore-tlog', '--allow-insecure-registry', `${byUs.host}/far/app:1`]);
    expect(v.code, v.stderr).toBe(0);
  });

  it("copy prints skopeo's plain lines when not on a terminal (JSON only with --progress json)", async () => {
    const args = (dest: string) => [
      'copy',
      '--dest-tls-verify=false',
      '--src-tls-verify=false',
      `docker://${reg.host}/team/app:1`,
      `docker://${dest}/text/app:1`,
    ];
    const theirs = await skopeo(args(bySkopeo.host));
    const ours = await stevedore(args(byUs.host));
    expect(ours.code, ours.stderr).toBe(0);
    const steps = (text: string) =>
      text
        .split('\n')
        .filter((l) => /^(Getting image source signatures|Copying (blob|config)|Writing manifest to image destination)/.test(l))
        .map((l) => l.replace(/^(Copying (blob|config)) .*/, '$1'))
        .sort();
    expect(steps(ours.stderr + ours.stdout)).toEqual(steps(theirs.stderr + theirs.stdout));
    expect(ours.stderr).not.toMatch(/^\{/m);
  });

  for (const [flags, type] of [
    [['--dest-compress-format', 'zstd'], 'application/vnd.oci.image.layer.v1.tar+zstd'],
    [['--dest-compress-format', 'gzip', '--dest-compress-level', '1'], 'application/vnd.oci.image.layer.v1.tar+gzip'],
    // As in skopeo, --dest-decompress applies to dir: destinations only: a registry keeps gzip.
    [['--dest-decompress'], 'application/vnd.oci.image.layer.v1.tar+gzip'],
  ] as const) {
    it(`copy ${flags.join(' ')} converts layers (the same diffIDs as skopeo's copy)`, async () => {
      const repo = `conv/${flags.join('').replace(/[^a-z0-9]/g, '')}`;
      const args = (dest: string) => [
        'copy',
        ...flags,
        '--src-tls-verify=false',
        '--dest-tls-verify=false',
        `docker://${reg.host}/team/app:1`,
        `docker://${dest}/${repo}:1`,
      ];
      const theirs = await skopeo(args(bySkopeo.host));
      const ours = await stevedore(args(byUs.host));
      expect(theirs.code, theirs.stderr).toBe(0);
      expect(ours.code, ours.stderr).toBe(0);
      const raw = async (host: string) =>
        JSON.parse((await skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${host}/${repo}:1`])).stdout) as { layers: { mediaType: string }[] };
      const diffIds = async (host: string) =>
        (JSON.parse((await skopeo(['inspect', '--tls-verify=false', '--config', `docker://${host}/${repo}:1`])).stdout) as { rootfs: { diff_ids: string[] } })
          .rootfs.diff_ids;
      // skopeo's own media types are not compared: its blob-info cache may substitute a blob of
      // another compression that the destination already has (what an earlier test pushed).
      expect((await raw(byUs.host)).layers.map((l) => l.mediaType)).toEqual([type]);
      expect((await raw(bySkopeo.host)).layers).toHaveLength(1);
      expect(await diffIds(byUs.host)).toEqual(await diffIds(bySkopeo.host));
      expect(await diffIds(byUs.host)).toEqual(image.diffIds);
      // And it reads back: skopeo copies our converted image into a layout.
      const back = await temps.make('conv-back');
      const read = await skopeo(['copy', '--src-tls-verify=false', `docker://${byUs.host}/${repo}:1`, `oci:${back}:x`]);
      expect(read.code, read.stderr).toBe(0);
    });
  }

  it('copy --dest-decompress to dir: stores plain tars, as skopeo does', async () => {
    const [a, b] = [await temps.make('dec-skopeo'), await temps.make('dec-us')];
    const args = (dir: string) => ['copy', '--dest-decompress', '--src-tls-verify=false', `docker://${reg.host}/team/app:1`, `dir:${dir}`];
    expect((await skopeo(args(a))).code).toBe(0);
    const ours = await stevedore(args(b));
    expect(ours.code, ours.stderr).toBe(0);
    const { readFile } = await import('node:fs/promises');
    const types = async (dir: string) =>
      (JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { layers: { mediaType: string; digest: string }[] }).layers.map((l) => [
        l.mediaType,
        l.digest,
      ]);
    expect(await types(b)).toEqual(await types(a));
    expect((await types(b))[0]![1]).toBe(image.diffIds[0]);
  });

  it('a compression change with --preserve-digests is refused with the reason, zstd:chunked included', async () => {
    const keep = await stevedore([
      'copy',
      '--preserve-digests',
      '--dest-compress-format',
      'zstd',
      `docker://${reg.host}/team/app:1`,
      `docker://${byUs.host}/conv/refused:1`,
    ]);
    expect(keep.code).toBe(125);
    expect(keep.stderr).toMatch(/--preserve-digests: .*converted to zstd.*the digest would change/);
    const chunked = await stevedore([
      'copy',
      '--preserve-digests',
      '--dest-compress-format',
      'zstd:chunked',
      `docker://${reg.host}/team/app:1`,
      `docker://${byUs.host}/conv/refused:1`,
    ]);
    expect(chunked.code).toBe(125);
    expect(chunked.stderr).toMatch(/--preserve-digests: .*converted to zstd:chunked.*the digest would change/);
  });

  it('--all with --platform is refused, naming both', async () => {
    const r = await stevedore(['sync', '--src', 'docker', '--dest', 'docker', '--all', '--platform', 'linux/amd64', `${reg.host}/team/app`, `${byUs.host}/x`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('--all and --platform contradict each other');
  });

  it('without --keep-going a failure is printed once and the summary still comes', async () => {
    const file = join(await temps.make('yaml-fail'), 'sync.yaml');
    await writeFile(file, `${reg.host}:\n  images:\n    team/app: ["1", "nope"]\n`);
    const r = await stevedore(['sync', '--src', 'yaml', '--dest', 'docker', '--parallel', '1', file, `${byUs.host}/once`]);
    expect(r.code).toBe(125);
    expect((r.stdout + r.stderr).match(/nope.*does not exist/g)).toHaveLength(1);
    expect(r.stderr).toMatch(/Sync: 1 copied, 0 unchanged, 1 failed, 0 pruned/);
    expect(r.stderr).toMatch(/sync stopped after a failed image/);
  });

  it('--digestfile lists the digest of every image synced', async () => {
    const out = join(await temps.make('digests'), 'digests');
    const r = await stevedore(['sync', '--src', 'docker', '--dest', 'docker', '-q', '--digestfile', out, `${reg.host}/team/app`, `${byUs.host}/df`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toBe('');
    const { readFile } = await import('node:fs/promises');
    const lines = (await readFile(out, 'utf8')).trim().split('\n').sort();
    expect(lines).toEqual(
      [
        `${image.manifest.digest} docker://${byUs.host}/df/app:1`,
        `${indexDigest} docker://${byUs.host}/df/app:2`,
        `${indexDigest} docker://${byUs.host}/df/app:2-rc`,
        `${image.manifest.digest} docker://${byUs.host}/df/app:latest`,
      ].sort(),
    );
  });
});
