/**
 * What `stevedore build` produces and where it goes: a push to a real registry (Docker or OCI media
 * types), the local store, digest and result files, reproducible digests with --timestamp and
 * SOURCE_DATE_EPOCH, the local cache (an unchanged rebuild runs nothing; a touched but unchanged file
 * is still a hit; a changed one rebuilds from there on), and contexts from a tarball and stdin.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cp, mkdir, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { MediaType } from '../../src/oci/mediatype.js';
import { normaliseImageName } from '../../src/runtime/store/names.js';
import { parseImageName } from '../../src/transports/index.js';
import { cleanupCli, cliTempDir, stevedore } from '../cli/stevedore.js';
import { makeBusyboxImage, makeIndex } from '../../hack/lib/harness/images.js';
import { validateOci } from '../../hack/lib/harness/schema.js';
import { runCommand } from '../../hack/lib/harness/procs.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { fileText, loadImage } from './corpus/harness.js';

let reg: TestRegistry;
let work: string;
let base: string;

const CONTAINERFILE = `ARG BASE
FROM $BASE
COPY app.txt /app/app.txt
RUN cat /app/app.txt > /app/copy.txt && echo run >> /app/copy.txt
CMD ["cat", "/app/copy.txt"]
`;

beforeAll(async () => {
  work = await cliTempDir('build-output');
  reg = await startRegistry();
  const bb = await makeBusyboxImage(join(work, 'busybox'), 'bb');
  base = `${reg.host}/output/busybox:1`;
  await copyReference(parseImageName(bb.ociRef), parseImageName(`docker://${base}`));
}, 60_000);

afterAll(async () => {
  await reg?.stop();
  await cleanupCli();
});

let n = 0;
async function context(files: Record<string, string> = { 'app.txt': 'application\n' }, containerfile = CONTAINERFILE): Promise<string> {
  const dir = join(work, `ctx-${++n}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'Containerfile'), containerfile);
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
  return dir;
}

function build(args: string[], env: NodeJS.ProcessEnv = {}, input?: Buffer) {
  return stevedore(['build', '--build-arg', `BASE=${base}`, ...args], { timeoutMs: 120_000, env, ...(input ? { input } : {}) });
}

describe('stevedore build outputs', () => {
  it('pushes to a registry with Docker media types, writes the digest and result files, keeps it in the store, and it runs', async () => {
    const dir = await context();
    const store = join(work, 'store-push');
    const digestFile = join(work, 'digest.txt');
    const resultFile = join(work, 'result.json');
    const ref = `${reg.host}/output/app:1`;
    const r = await build([
      '--root',
      store,
      '--format',
      'docker',
      '-t',
      ref,
      '--digestfile',
      digestFile,
      '--result-file',
      resultFile,
      '--label',
      'extra=yes',
      dir,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const digest = r.stdout.trim();
    expect(await readFile(digestFile, 'utf8')).toBe(digest);
    const result = JSON.parse(await readFile(resultFile, 'utf8'));
    expect(result).toMatchObject({ image: ref, digest, platforms: [{ platform: 'linux/amd64', digest }] });
    expect(result.size).toBeGreaterThan(1000);
    // The registry has it, byte for byte, with Docker media types.
    const raw = await stevedore(['inspect', '--raw', `docker://${ref}`]);
    expect(raw.code, raw.stderr).toBe(0);
    expect(`sha256:${execFileSync('sha256sum', { input: raw.stdout }).toString().split(' ')[0]}`).toBe(digest);
    const manifest = JSON.parse(raw.stdout) as { mediaType: string; config: { mediaType: string }; layers: { mediaType: string }[] };
    expect(manifest.mediaType).toBe(MediaType.DockerManifest);
    expect(manifest.config.mediaType).toBe(MediaType.DockerConfig);
    expect(manifest.layers.every((l) => l.mediaType === MediaType.DockerLayerGzip)).toBe(true);
    const config = JSON.parse((await stevedore(['inspect', '--config', `docker://${ref}`])).stdout) as { config: { Labels: Record<string, string> } };
    expect(config.config.Labels).toEqual({ extra: 'yes' });
    // And the local store, under the same name: `stevedore run` finds it without a pull.
    const run = await stevedore(['run', '--root', store, '--rm', '--pull', 'never', ref]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('application\nrun\n');
  });

  it('OCI format with annotations passes the schemas; a bare name stays in the local store; podman runs it', async () => {
    const dir = await context();
    const store = join(work, 'store-oci');
    const out = join(work, 'oci-out');
    const r = await build([
      '--root',
      store,
      '-q',
      '--annotation',
      'org.opencontainers.image.source=https://example.com/repo',
      '-t',
      'myapp:dev',
      '-t',
      `oci:${out}:v1`,
      dir,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const img = await loadImage(out, 'v1');
    expect(img.mediaType).toBe(MediaType.OciManifest);
    expect(img.manifest.annotations).toEqual({ 'org.opencontainers.image.source': 'https://example.com/repo' });
    validateOci('manifest', JSON.parse(img.manifestBytes.toString()));
    validateOci('config', JSON.parse(img.configBytes.toString()));
    const images = await stevedore(['images', '--root', store]);
    expect(images.stdout).toMatch(/^localhost\/myapp\s+dev\s/m);
    const run = await stevedore(['run', '--root', store, '--rm', '--pull', 'never', 'localhost/myapp:dev']);
    expect(run.stdout).toBe('application\nrun\n');
    // Podman runs it too (its own store under the test's dir; runc, cgroupfs, rlimits this host allows).
    // Podman names an oci: image after its path, which must be lower-case: copy the layout there.
    const lower = join(tmpdir(), `stevedore-podman-${randomBytes(6).toString('hex')}`);
    await cp(out, lower, { recursive: true });
    const podman = await runCommand(
      'podman',
      [
        '--root',
        join(work, 'podman', 'root'),
        '--runroot',
        join(work, 'podman', 'run'),
        '--storage-driver',
        'vfs',
        '--runtime',
        'runc',
        '--cgroup-manager',
        'cgroupfs',
        '--events-backend',
        'file',
        'run',
        '--rm',
        '--network',
        'none',
        '--ulimit',
        'nofile=1024:1024',
        '--ulimit',
        'nproc=1024:1024',
        `oci:${lower}:v1`,
      ],
      { timeoutMs: 120_000 },
    ).finally(() => rm(lower, { recursive: true, force: true }));
    expect(podman.code, podman.stderr).toBe(0);
    expect(podman.stdout).toBe('application\nrun\n');
  });

  it('--timestamp and SOURCE_DATE_EPOCH give the same digests in fresh stores, on any day: the local image and the one sent', async () => {
    const dir = await context();
    const a = await build(['--root', join(work, 'store-r1'), '-q', '--timestamp', '1700000000', dir]);
    // Make every file newer: mtimes must not reach the image.
    const later = new Date('2030-01-01T00:00:00Z');
    await utimes(join(dir, 'app.txt'), later, later);
    const b = await build(['--root', join(work, 'store-r2'), '-q', dir], { SOURCE_DATE_EPOCH: '1700000000' });
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(a.stdout.trim()).toMatch(/^sha256:/);
    expect(b.stdout.trim()).toBe(a.stdout.trim());
    // What leaves the machine (here a layout) has gzip layers, so another digest: the same from a
    // store that built it again and from one that compresses the cached layers of the build above.
    const out = join(work, 'repro');
    const c = await build(['--root', join(work, 'store-r1'), '-q', '--no-cache', '--timestamp', '1700000000', '-t', `oci:${out}:r`, dir]);
    const d = await build(['--root', join(work, 'store-r2'), '-q', '-t', `oci:${out}:r2`, dir], { SOURCE_DATE_EPOCH: '1700000000' });
    expect(c.code, c.stderr).toBe(0);
    expect(d.code, d.stderr).toBe(0);
    expect(c.stdout.trim()).toMatch(/^sha256:/);
    expect(c.stdout.trim()).not.toBe(a.stdout.trim());
    expect(d.stdout.trim()).toBe(c.stdout.trim());
    const img = await loadImage(out, 'r');
    expect(img.manifest.layers.every((l) => l.mediaType === MediaType.OciLayerGzip)).toBe(true);
    expect(img.config.created).toBe('2023-11-14T22:13:20.000Z');
    // Every history entry of this build (the base image's first one keeps its own date).
    expect(img.config.history?.slice(1).map((h) => h.created)).toEqual(Array(3).fill('2023-11-14T22:13:20.000Z'));
  });

  it('keeps built layers as plain tars in the store and gzips them only to push; a second push of the same layers only HEADs them', async () => {
    const dir = await context({ 'app.txt': 'plain locally\n' });
    const store = join(work, 'store-plain');
    const first = await build([
      '--root',
      store,
      '--log-level',
      'debug',
      '-q',
      '--timestamp',
      '1700000000',
      '-t',
      'localhost/plain:1',
      '-t',
      `${reg.host}/output/plain:1`,
      dir,
    ]);
    expect(first.code, first.stderr).toBe(0);
    const pushedDigest = first.stdout.trim();
    // Two built layers (COPY, RUN) compressed once each for the push.
    expect(first.stderr.match(/"msg":"layer compressed"/g)).toHaveLength(2);
    const local = await loadImage(join(store, 'images'), normaliseImageName('localhost/plain:1').storeName);
    const pushedAs = await loadImage(join(store, 'images'), normaliseImageName(`${reg.host}/output/plain:1`).storeName);
    // Both local names are the local image: base layer as pulled (gzip), built layers plain, digest = diffID.
    expect(pushedAs.manifestBytes.equals(local.manifestBytes)).toBe(true);
    expect(local.manifest.layers.map((l) => l.mediaType)).toEqual([MediaType.OciLayerGzip, MediaType.OciLayer, MediaType.OciLayer]);
    expect(local.manifest.layers.slice(1).map((l) => l.digest)).toEqual(local.config.rootfs.diff_ids.slice(1));
    validateOci('manifest', JSON.parse(local.manifestBytes.toString()));
    // The registry's copy: gzip layers, same config, and the digest the build printed.
    const raw = await stevedore(['inspect', '--raw', `docker://${reg.host}/output/plain:1`]);
    expect(`sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`).toBe(pushedDigest);
    const manifest = JSON.parse(raw.stdout) as { config: { digest: string }; layers: { mediaType: string; digest: string }[] };
    expect(manifest.layers.every((l) => l.mediaType === MediaType.OciLayerGzip)).toBe(true);
    expect(manifest.config.digest).toBe(local.manifest.config.digest);
    // Pull it into a fresh store and run it: the gzip layers hold the same files.
    const run = await stevedore(['run', '--root', join(work, 'store-plain-pull'), '--rm', `${reg.host}/output/plain:1`]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('plain locally\nrun\n');
    // Same layers again, to another tag: the blob-info cache names the gzip blobs, the registry has them.
    const again = await build(['--root', store, '--log-level', 'debug', '-q', '--timestamp', '1700000000', '-t', `${reg.host}/output/plain:2`, dir]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.trim()).toBe(pushedDigest);
    expect(again.stderr).not.toMatch(/"msg":"layer compressed"/);
    expect(again.stderr).not.toMatch(/"msg":"blob copied"/);
    // Another repository has none of them: the known gzip form is made again from the plain tar, verified as it is sent.
    const other = await build(['--root', store, '--log-level', 'debug', '-q', '--timestamp', '1700000000', '-t', `${reg.host}/output/plain-other:1`, dir]);
    expect(other.code, other.stderr).toBe(0);
    expect(other.stdout.trim()).toBe(pushedDigest);
    expect(other.stderr).not.toMatch(/"msg":"layer compressed"/);
    expect(other.stderr.match(/"msg":"blob copied"/g)!.length).toBeGreaterThanOrEqual(3);
  });

  it('the local cache: an unchanged rebuild runs no step; a touched file still hits; a changed one rebuilds from there', async () => {
    const dir = await context();
    const store = join(work, 'store-cache');
    const first = await build(['--root', store, dir]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain('(2 steps run, 0 from cache');
    const again = await build(['--root', store, dir]);
    expect(again.stderr).toContain('(0 steps run, 2 from cache');
    expect(again.stderr.match(/--> Using cache/g)).toHaveLength(2);
    const later = new Date('2031-01-01T00:00:00Z');
    await utimes(join(dir, 'app.txt'), later, later);
    const touched = await build(['--root', store, dir]);
    expect(touched.stderr).toContain('(0 steps run, 2 from cache');
    await writeFile(join(dir, 'app.txt'), 'changed\n');
    const changed = await build(['--root', store, '-t', 'localhost/cached:1', dir]);
    expect(changed.stderr).toContain('(2 steps run, 0 from cache');
    const run = await stevedore(['run', '--root', store, '--rm', 'localhost/cached:1']);
    expect(run.stdout).toBe('changed\nrun\n');
    const noCache = await build(['--root', store, '--no-cache', dir]);
    expect(noCache.stderr).toContain('(2 steps run, 0 from cache');
  });

  it('snapshots made while a COPY layer is written: the RUN sees them, a cache hit after a touch discards them, nothing half-made stays', async () => {
    const dir = await context(
      { 'a.txt': 'first\n', 'b.txt': 'second\n' },
      'ARG BASE\nFROM $BASE\nCOPY a.txt /a/\nCOPY b.txt /b/\nRUN cat /a/a.txt /b/b.txt > /out.txt\nCMD ["cat", "/out.txt"]\n',
    );
    const store = join(work, 'store-ahead');
    const leftovers = async (): Promise<string[]> => (await readdir(join(store, 'snapshots'))).filter((n) => n.startsWith('.tmp'));
    const first = await build(['--root', store, '-t', 'localhost/ahead:1', dir]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain('(3 steps run, 0 from cache');
    expect(await leftovers()).toEqual([]);
    expect((await stevedore(['run', '--root', store, '--rm', 'localhost/ahead:1'])).stdout).toBe('first\nsecond\n');
    // Touched, not changed: the layers are written again while hashed (the stat fingerprints
    // changed), the snapshots started with them, and all of it dropped on the cache hits.
    const later = new Date('2032-01-01T00:00:00Z');
    for (const f of ['a.txt', 'b.txt']) await utimes(join(dir, f), later, later);
    const touched = await build(['--root', store, dir]);
    expect(touched.code, touched.stderr).toBe(0);
    expect(touched.stderr).toContain('(0 steps run, 3 from cache');
    expect(await leftovers()).toEqual([]);
    // A changed second file: the first COPY hits, the second is rebuilt and its snapshot used by the RUN.
    await writeFile(join(dir, 'b.txt'), 'changed\n');
    const changed = await build(['--root', store, '-t', 'localhost/ahead:2', dir]);
    expect(changed.stderr).toContain('(2 steps run, 1 from cache');
    expect(await leftovers()).toEqual([]);
    const run2 = await stevedore(['run', '--root', store, '--rm', 'localhost/ahead:2']);
    expect(run2.stdout, run2.stderr).toBe('first\nchanged\n');
  });

  it('the registry cache: a build with an empty store gets every step from --cache-from', async () => {
    const dir = await context({ 'app.txt': 'registry cache\n' });
    const cacheRepo = `${reg.host}/output/cache`;
    const first = await build(['--root', join(work, 'store-rc1'), '--timestamp', '1', '--cache-to', cacheRepo, dir]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain('(2 steps run, 0 from cache');
    const fresh = await build(['--root', join(work, 'store-rc2'), '--timestamp', '1', '--cache-from', cacheRepo, '-t', 'localhost/rc:1', dir]);
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(fresh.stderr).toContain('(0 steps run, 2 from cache');
    expect(fresh.stdout.trim()).toBe(first.stdout.trim());
    // The layers fetched from the cache make a runnable image.
    const run = await stevedore(['run', '--root', join(work, 'store-rc2'), '--rm', 'localhost/rc:1']);
    expect(run.stdout).toBe('registry cache\nrun\n');
    // A fresh store reading and writing the same cache (a build Pod's set-up) sends nothing back
    // for its hits: no layer is compressed again just to find the cache has it.
    const again = await build([
      '--root',
      join(work, 'store-rc3'),
      '--log-level',
      'debug',
      '--timestamp',
      '1',
      '--cache-from',
      cacheRepo,
      '--cache-to',
      cacheRepo,
      dir,
    ]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain('(0 steps run, 2 from cache');
    expect(again.stderr).not.toContain('layer compressed');
  });

  it('--platform builds for another architecture without emulation when no RUN needs it; a RUN says what is missing', async () => {
    const dir = await context({ 'a.txt': 'arm\n' }, 'FROM scratch\nCOPY a.txt /a.txt\n');
    const out = join(work, 'arm64');
    const resultFile = join(work, 'arm64.json');
    const r = await build(['--root', join(work, 'store-arm'), '--platform', 'linux/arm64', '--result-file', resultFile, '-t', `oci:${out}:arm`, dir]);
    expect(r.code, r.stderr).toBe(0);
    const img = await loadImage(out, 'arm');
    expect([img.config.os, img.config.architecture, img.config.variant]).toEqual(['linux', 'arm64', 'v8']);
    expect(JSON.parse(await readFile(resultFile, 'utf8')).platforms[0].platform).toBe('linux/arm64/v8');
    const withRun = await context({}, 'FROM --platform=linux/arm64 scratch\nRUN ["/bin/true"]\n');
    const failed = await build(['--root', join(work, 'store-arm'), withRun]);
    expect(failed.code).toBe(1);
    if (existsSync('/proc/sys/fs/binfmt_misc/qemu-aarch64')) expect(failed.stderr).toMatch(/Containerfile:2: RUN/);
    else expect(failed.stderr).toMatch(/Containerfile:2: RUN \["\/bin\/true"\]: RUN for linux\/arm64\/v8 on this linux\/amd64 host needs qemu-user emulation/);
  });

  it('--platform with several platforms builds each from a multi-arch base and pushes an index', async () => {
    const multi = await makeIndex(join(work, 'multi-base'), 'm', ['linux/amd64', 'linux/arm64'], { layers: 1, layerSize: 2048 });
    const baseRef = `${reg.host}/output/multi-base:1`;
    await copyReference(parseImageName(multi.ociRef), parseImageName(`docker://${baseRef}`), { all: true });
    const dir = await context({ 'a.txt': 'on every platform\n' }, `FROM ${baseRef}\nARG TARGETARCH\nCOPY a.txt /a.txt\nLABEL arch=$TARGETARCH\n`);
    const ref = `${reg.host}/output/multi:1`;
    const resultFile = join(work, 'multi.json');
    const r = await build(['--root', join(work, 'store-multi'), '--platform', 'linux/amd64,linux/arm64', '--result-file', resultFile, '-t', ref, dir]);
    expect(r.code, r.stderr).toBe(0);
    const raw = await stevedore(['inspect', '--raw', `docker://${ref}`]);
    const index = JSON.parse(raw.stdout) as { mediaType: string; manifests: { digest: string; platform: { architecture: string } }[] };
    expect(index.mediaType).toBe(MediaType.OciIndex);
    validateOci('index', index);
    expect(index.manifests.map((m) => m.platform.architecture)).toEqual(['amd64', 'arm64']);
    const result = JSON.parse(await readFile(resultFile, 'utf8')) as { digest: string; platforms: { platform: string; digest: string }[] };
    expect(result.digest).toBe(r.stdout.trim());
    expect(result.platforms).toEqual([
      { platform: 'linux/amd64', digest: index.manifests[0]!.digest },
      { platform: 'linux/arm64/v8', digest: index.manifests[1]!.digest },
    ]);
    for (const [i, arch] of ['amd64', 'arm64'].entries()) {
      const cfg = JSON.parse((await stevedore(['inspect', '--config', `docker://${ref.replace(':1', '')}@${index.manifests[i]!.digest}`])).stdout) as {
        architecture: string;
        config: { Labels: Record<string, string> };
      };
      expect(cfg.architecture).toBe(arch);
      expect(cfg.config.Labels).toEqual({ arch });
    }
  });

  it('ONBUILD triggers of a base image run in the child build, once', async () => {
    const parentDir = await context({}, 'ARG BASE\nFROM $BASE\nONBUILD COPY trigger.txt /from-trigger.txt\nONBUILD RUN echo ran > /trigger-ran.txt\n');
    const parentRef = `${reg.host}/output/onbuild-parent:1`;
    const store = join(work, 'store-onbuild');
    const p = await build(['--root', store, '-t', parentRef, parentDir]);
    expect(p.code, p.stderr).toBe(0);
    const childDir = await context({ 'trigger.txt': 'copied by a trigger\n' }, `FROM ${parentRef}\nCMD ["cat", "/from-trigger.txt", "/trigger-ran.txt"]\n`);
    const out = join(work, 'onbuild');
    const c = await build(['--root', store, '-t', `oci:${out}:child`, '-t', 'localhost/onbuild-child:1', childDir]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stderr).toContain('COPY trigger.txt /from-trigger.txt (ONBUILD)');
    const img = await loadImage(out, 'child');
    expect(img.config.config?.OnBuild ?? []).toEqual([]);
    const run = await stevedore(['run', '--root', store, '--rm', 'localhost/onbuild-child:1']);
    expect(run.stdout).toBe('copied by a trigger\nran\n');
  });

  it('ADD of a URL verifies --checksum and names the file after the URL', async () => {
    const body = 'downloaded content\n';
    const server = createServer((req, res) => {
      if (req.url === '/files/tool.txt') res.end(body);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const sum = createHash('sha256').update(body).digest('hex');
      const good = await context({}, `FROM scratch\nADD --checksum=sha256:${sum} http://127.0.0.1:${port}/files/tool.txt /opt/\n`);
      const out = join(work, 'add-url');
      const r = await build(['--root', join(work, 'store-url'), '-t', `oci:${out}:u`, good]);
      expect(r.code, r.stderr).toBe(0);
      expect(await fileText(out, 'u', '/opt/tool.txt')).toBe(body);
      const bad = await context({}, `FROM scratch\nADD --checksum=sha256:${'0'.repeat(64)} http://127.0.0.1:${port}/files/tool.txt /opt/\n`);
      const f = await build(['--root', join(work, 'store-url'), bad]);
      expect(f.code).not.toBe(0);
      expect(f.stderr).toMatch(/Containerfile:2/);
      expect(f.stderr).toMatch(/checksum|digest/i);
    } finally {
      server.close();
    }
  });

  it('builds from a context tarball and from a tar on stdin', async () => {
    const dir = await context({ 'app.txt': 'from a tar\n' });
    const tarball = join(work, 'context.tar.gz');
    execFileSync('tar', ['-czf', tarball, '-C', dir, '.']);
    const store = join(work, 'store-tar');
    const fromFile = await build(['--root', store, '--timestamp', '1', '-t', 'localhost/fromtar:1', tarball]);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect((await stevedore(['run', '--root', store, '--rm', 'localhost/fromtar:1'])).stdout).toBe('from a tar\nrun\n');
    const fromStdin = await build(
      ['--root', store, '-q', '--timestamp', '1', '-t', 'localhost/fromstdin:1', '-'],
      {},
      execFileSync('tar', ['-cf', '-', '-C', dir, '.']),
    );
    expect(fromStdin.code, fromStdin.stderr).toBe(0);
    expect(fromStdin.stdout.trim()).toBe(fromFile.stdout.trim().split('\n').pop());
  });
});
