/**
 * buildah's `bud` flags through the real `stevedore build`: --layers (and Go's --layers=false form),
 * --iidfile, --metadata-file, -f - (the Containerfile on stdin), -f A -f B (refused, saying how),
 * --secret id=X,env=VAR, --ssh (an SSH agent socket for RUN --mount=type=ssh),
 * --source-date-epoch / --rewrite-timestamp, and a failed RUN's exit code passed through.
 */
import { createServer, type Server } from 'node:net';
import { execFileSync } from 'node:child_process';
import { lstat, mkdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupCli, cliTempDir, stevedore } from './stevedore.js';
import { makeBusyboxImage } from '../../hack/lib/harness/images.js';
import { diffFs, fileText, flatten, loadImage } from '../build/corpus/harness.js';

let work: string;
let store: string;
let base: string;

beforeAll(async () => {
  work = await cliTempDir('build-flags');
  store = join(work, 'store');
  base = (await makeBusyboxImage(join(work, 'busybox'), 'bb')).ociRef;
}, 60_000);

afterAll(async () => {
  await cleanupCli();
});

let n = 0;
async function context(containerfile: string | undefined, files: Record<string, string> = {}): Promise<string> {
  const dir = join(work, `ctx-${++n}`);
  await mkdir(dir, { recursive: true });
  if (containerfile !== undefined) await writeFile(join(dir, 'Containerfile'), containerfile.replaceAll('$BASE_IMAGE', base));
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content.replaceAll('$BASE_IMAGE', base));
  return dir;
}

function build(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}) {
  return stevedore(['build', '--root', store, ...args], { timeoutMs: 120_000, ...opts });
}

describe('stevedore build: buildah flags', () => {
  it('--layers, --layers=true and --layers=false are accepted (every step is cached anyway)', async () => {
    const dir = await context('FROM $BASE_IMAGE\nRUN echo hi > /hi\n');
    for (const flag of ['--layers', '--layers=true', '--layers=false']) {
      const r = await build([flag, '-q', dir]);
      expect(r.code, `${flag}: ${r.stderr}`).toBe(0);
      expect(r.stdout.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
    }
    const bad = await build(['--layers=maybe', dir]);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain('expected true or false, got "maybe"');
  });

  it('--iidfile holds the image ID (the config digest), --metadata-file the digest, descriptor and platforms', async () => {
    const dir = await context('FROM $BASE_IMAGE\nLABEL a=b\n');
    const out = join(work, 'meta-layout');
    const r = await build(['-q', '--iidfile', join(work, 'iid'), '--metadata-file', join(work, 'meta.json'), '-t', `oci:${out}:x`, dir]);
    expect(r.code, r.stderr).toBe(0);
    const digest = r.stdout.trim();
    const image = await loadImage(out, 'x');
    const iid = await readFile(join(work, 'iid'), 'utf8');
    expect(iid).toBe(image.manifest.config.digest);
    const meta = JSON.parse(await readFile(join(work, 'meta.json'), 'utf8'));
    expect(meta['containerimage.digest']).toBe(digest);
    expect(meta['containerimage.config.digest']).toBe(iid);
    expect(meta['containerimage.descriptor']).toEqual({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: image.manifestBytes.length });
    expect(meta['image.name']).toBe(`oci:${out}:x`);
    expect(meta.size).toBeGreaterThan(image.manifestBytes.length);
    expect(meta.platforms).toEqual([expect.objectContaining({ digest, configDigest: iid, platform: expect.stringMatching(/^linux\//) })]);
  });

  it('-f - reads the Containerfile from stdin; errors name it', async () => {
    const dir = await context(undefined, { 'a.txt': 'from context\n' });
    const out = join(work, 'stdin-layout');
    const r = await build(['-q', '-f', '-', '-t', `oci:${out}:x`, dir], { input: `FROM ${base}\nCOPY a.txt /a.txt\n` });
    expect(r.code, r.stderr).toBe(0);
    expect(await fileText(out, 'x', 'a.txt')).toBe('from context\n');
    const bad = await build(['-f', '-', dir], { input: `FROM ${base}\nCOPPY a b\n` });
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain('Containerfile (stdin):2: unknown instruction "COPPY"');
    const both = await build(['-f', '-', '-'], { input: 'x' });
    expect(both.code).toBe(125);
    expect(both.stderr).toContain('-f - and a context of - both read stdin');
  });

  it('-f A -f B joins the files in order, as buildah (building only B silently was the bug); messages name the right file and line', async () => {
    const dir = await context(undefined, {
      A: 'FROM $BASE_IMAGE\nCOPY a.txt /a.txt\n',
      B: '# from B\nRUN cat /a.txt > /b.txt\n',
      C: '\n\nCOPY missing.txt /\n',
      'a.txt': 'a\n',
    });
    const out = join(work, 'joined-layout');
    const r = await build(['-q', '-f', join(dir, 'A'), '-f', join(dir, 'B'), '-t', `oci:${out}:x`, dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(await fileText(out, 'x', 'b.txt')).toBe('a\n');
    const bad = await build(['-f', join(dir, 'A'), '-f', join(dir, 'B'), '-f', join(dir, 'C'), dir]);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain(`${join(dir, 'C')}:3: COPY missing.txt /`);
    const withStdin = await build(['-f', join(dir, 'A'), '-f', '-', dir], { input: 'RUN true\n' });
    expect(withStdin.code).toBe(125);
    expect(withStdin.stderr).toContain('cannot be joined');
  });

  it('--secret id=X,env=VAR reaches RUN --mount=type=secret as a file and as an env var; its value is in no layer or message', async () => {
    const dir = await context(
      'FROM $BASE_IMAGE\nRUN --mount=type=secret,id=tok cat /run/secrets/tok > /file.txt\nRUN --mount=type=secret,id=tok,env=TOK echo "$TOK" > /env.txt\nRUN --mount=type=secret,id=plain,required=true ls /run/secrets > /ls.txt\n',
      { 'plain.txt': 'p' },
    );
    const out = join(work, 'secret-layout');
    const r = await build(['--secret', 'id=tok,env=MY_TOKEN', '--secret', `id=plain,src=${join(dir, 'plain.txt')}`, '-t', `oci:${out}:x`, dir], {
      env: { MY_TOKEN: 's3cr3t-value' },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(await fileText(out, 'x', 'file.txt')).toBe('s3cr3t-value');
    expect(await fileText(out, 'x', 'env.txt')).toBe('s3cr3t-value\n');
    expect(await fileText(out, 'x', 'ls.txt')).toBe('plain\n');
    expect(await fileText(out, 'x', 'run/secrets/tok')).toBeUndefined();
    expect(r.stderr).not.toContain('s3cr3t-value');
    const unset = await build(['--secret', 'id=tok,env=NOT_SET_ANYWHERE', dir]);
    expect(unset.code).toBe(125);
    expect(unset.stderr).toContain('--secret id=tok: the environment variable NOT_SET_ANYWHERE is not set');
  });

  it('--ssh default forwards $SSH_AUTH_SOCK to RUN --mount=type=ssh (SSH_AUTH_SOCK set in the step); an unforwarded required agent is an error', async () => {
    const sock = join(work, 'agent.sock');
    const server: Server = createServer((c) => c.end());
    await new Promise<void>((res) => server.listen(sock, res));
    try {
      const dir = await context(
        'FROM $BASE_IMAGE\nRUN --mount=type=ssh test -S "$SSH_AUTH_SOCK" && echo "$SSH_AUTH_SOCK" > /sock.txt\nRUN --mount=type=ssh,id=deploy,target=/agent test -S /agent && echo ok > /deploy.txt\n',
      );
      const out = join(work, 'ssh-layout');
      const r = await build(['--ssh', 'default', '--ssh', `deploy=${sock}`, '-t', `oci:${out}:x`, dir], { env: { SSH_AUTH_SOCK: sock } });
      expect(r.code, r.stderr).toBe(0);
      expect(await fileText(out, 'x', 'sock.txt')).toBe('/run/buildkit/ssh_agent.0\n');
      expect(await fileText(out, 'x', 'deploy.txt')).toBe('ok\n');
      const missing = await build([await context('FROM $BASE_IMAGE\nRUN --mount=type=ssh,required=true true\n')]);
      expect(missing.code).not.toBe(0);
      expect(missing.stderr).toMatch(/Containerfile:2: RUN .*no SSH agent "default" was forwarded/);
      const notSock = await build(['--ssh', `default=${join(dir, 'Containerfile')}`, dir]);
      expect(notSock.code).toBe(125);
      expect(notSock.stderr).toContain('is not a socket');
    } finally {
      await new Promise<void>((res) => server.close(() => res()));
    }
  });

  it('--build-context NAME=DIR feeds COPY --from and RUN --mount=from; NAME=docker-image://REF replaces FROM NAME', async () => {
    const extra = await context(undefined, { 'lib.txt': 'from the named context\n', 'hidden.txt': 'no', '.dockerignore': 'hidden.txt\n' });
    const dir = await context('FROM upstream/base:1\nCOPY --from=libs lib.txt /lib.txt\nRUN --mount=from=libs,target=/m cat /m/lib.txt > /via-mount.txt\n');
    const out = join(work, 'named-layout');
    const r = await build(['-q', '--build-context', `libs=${extra}`, '--build-context', `upstream/base:1=docker-image://${base}`, '-t', `oci:${out}:x`, dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(await fileText(out, 'x', 'lib.txt')).toBe('from the named context\n');
    expect(await fileText(out, 'x', 'via-mount.txt')).toBe('from the named context\n');
    // A cache mount can be seeded from it too.
    const seeded = await build([
      '-q',
      '--build-context',
      `libs=${extra}`,
      '--build-context',
      `upstream/base:1=docker-image://${base}`,
      '-t',
      `oci:${out}:seeded`,
      await context('FROM upstream/base:1\nRUN --mount=type=cache,from=libs,target=/c cat /c/lib.txt > /seeded.txt\n'),
    ]);
    expect(seeded.code, seeded.stderr).toBe(0);
    expect(await fileText(out, 'seeded', 'seeded.txt')).toBe('from the named context\n');
    // The named context's own .dockerignore applies.
    const hidden = await build([
      '--build-context',
      `libs=${extra}`,
      '--build-context',
      `upstream/base:1=docker-image://${base}`,
      await context('FROM upstream/base:1\nCOPY --from=libs hidden.txt /\n'),
    ]);
    expect(hidden.code).toBe(125);
    expect(hidden.stderr).toContain('COPY source "hidden.txt": not found in build context "libs": it is excluded by .dockerignore');
    const asBase = await build(['--build-context', `libs=${extra}`, await context('FROM libs\n')]);
    expect(asBase.code).toBe(125);
    expect(asBase.stderr).toContain('"libs" is a --build-context of files, not an image');
    const bad = await build(['--build-context', 'x=ftp://example.test/a', dir]);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain('want a path, a Git or http(s) URL, or docker-image://REF');
  });

  it('--squash makes the new layers one (deletions kept as whiteouts), over the base layer, with the same filesystem', async () => {
    const dir = await context('FROM $BASE_IMAGE\nRUN echo a > /a.txt\nRUN rm /bin/false && mkdir -p /d && echo b > /d/b\nCOPY x.txt /d/\nENV K=v\n', {
      'x.txt': 'x',
    });
    const out = join(work, 'squash-layout');
    const plain = await build(['-q', '--timestamp', '1700000000', '-t', `oci:${out}:plain`, dir]);
    const squashed = await build(['-q', '--squash', '--timestamp', '1700000000', '-t', `oci:${out}:squashed`, dir]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(squashed.code, squashed.stderr).toBe(0);
    const a = await loadImage(out, 'plain');
    const b = await loadImage(out, 'squashed');
    expect(a.manifest.layers).toHaveLength(4);
    expect(b.manifest.layers).toHaveLength(2);
    expect(b.manifest.layers[0]!.digest).toBe(a.manifest.layers[0]!.digest);
    expect(b.config.history?.filter((h) => !h.empty_layer)).toHaveLength(2);
    expect(b.config.config?.Env).toContain('K=v');
    const fa = await flatten(out, 'plain');
    const fb = await flatten(out, 'squashed');
    expect(fb.has('/bin/false')).toBe(false);
    expect(diffFs(fb, fa)).toEqual([]);
  });

  it('--compression-format zstd sends zstd layers (OCI), which run; with --format docker it is refused, as zstd:chunked is, and an unknown format', async () => {
    const dir = await context('FROM $BASE_IMAGE\nRUN echo z > /z.txt\n');
    const out = join(work, 'zstd-layout');
    const r = await build(['-q', '--compression-format', 'zstd', '-t', `oci:${out}:z`, dir]);
    expect(r.code, r.stderr).toBe(0);
    const image = await loadImage(out, 'z');
    // The base layer was gzip and is sent as it is; the new layer is zstd.
    expect(image.manifest.layers.at(-1)!.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
    expect(await fileText(out, 'z', 'z.txt')).toBe('z\n');
    const ran = await stevedore(['run', '--root', join(work, 'run-store'), '--rm', `oci:${out}:z`, 'cat', '/z.txt'], { timeoutMs: 60_000 });
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toBe('z\n');
    const docker = await build(['--compression-format', 'zstd', '--format', 'docker', dir]);
    expect(docker.code).toBe(125);
    expect(docker.stderr).toContain('needs --format oci');
    const chunked = await build(['--compression-format', 'zstd:chunked', '--format', 'docker', dir]);
    expect(chunked.code).toBe(125);
    expect(chunked.stderr).toContain('--compression-format zstd:chunked needs --format oci');
    const unknown = await build(['--compression-format', 'lz4', dir]);
    expect(unknown.code).toBe(125);
    expect(unknown.stderr).toContain('--compression-format must be gzip, zstd or zstd:chunked, got "lz4"');
  });

  it("buildah's image-config flags: --env, --unsetenv, --omit-history; --pull in its bare and true/false forms; accepted no-ops", async () => {
    const dir = await context('FROM $BASE_IMAGE\nENV KEEP=1 DROP=2\nRUN true\n');
    const out = join(work, 'config-layout');
    const r = await build([
      '-q',
      '--env',
      'ADDED=3',
      '--env',
      'KEEP=changed',
      '--unsetenv',
      'DROP',
      '--omit-history',
      '--pull',
      '--jobs',
      '4',
      '--skip-unused-stages=false',
      '--rm',
      '--force-rm=true',
      '--identity-label=false',
      '-t',
      `oci:${out}:x`,
      dir,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const image = await loadImage(out, 'x');
    expect(image.config.config?.Env).toEqual(expect.arrayContaining(['KEEP=changed', 'ADDED=3']));
    expect(image.config.config?.Env?.some((e) => e.startsWith('DROP='))).toBe(false);
    expect(image.config.history).toBeUndefined();
    for (const pull of [['--pull=true'], ['--pull=false'], ['--pull=newer'], ['--pull', 'false']]) {
      const p = await build(['-q', ...pull, dir]);
      expect(p.code, `${pull}: ${p.stderr}`).toBe(0);
    }
    const badJobs = await build(['--jobs', 'many', dir]);
    expect(badJobs.code).toBe(125);
    expect(badJobs.stderr).toContain('--jobs must be a number');
  });

  it("--os/--arch/--variant name the platform; --ignorefile replaces the context's .dockerignore", async () => {
    const dir = await context('FROM scratch\nCOPY . /ctx/\n', {
      'a.txt': 'a',
      'b.log': 'b',
      '.dockerignore': '*.txt\n',
      'my.ignore': '*.log\nmy.ignore\nContainerfile\n',
    });
    const out = join(work, 'arch-layout');
    const r = await build(['-q', '--os', 'linux', '--arch', 'arm64', '--variant', 'v8', '--ignorefile', join(dir, 'my.ignore'), '-t', `oci:${out}:x`, dir]);
    expect(r.code, r.stderr).toBe(0);
    const image = await loadImage(out, 'x');
    expect([image.config.os, image.config.architecture, image.config.variant]).toEqual(['linux', 'arm64', 'v8']);
    const fs = await flatten(out, 'x');
    expect([...fs.keys()].sort()).toEqual(['/ctx', '/ctx/.dockerignore', '/ctx/a.txt']);
    const both = await build(['--arch', 'arm64', '--platform', 'linux/amd64', dir]);
    expect(both.code).toBe(125);
    const missing = await build(['--ignorefile', join(dir, 'nope'), dir]);
    expect(missing.code).toBe(125);
    expect(missing.stderr).toContain('--ignorefile');
  });

  it('--remote refuses the flags an ImageBuild cannot carry instead of dropping them', async () => {
    const dir = await context('FROM $BASE_IMAGE\n');
    const r = await stevedore(['build', '--remote', '-t', '127.0.0.1:1/x:1', '--secret', 'id=a,env=HOME', '--squash', dir], { timeoutMs: 30_000 });
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('--remote cannot pass on --secret, --squash');
  });

  it("-o type=local and type=tar write the built stage's files (owners, links); a non-empty directory and - are refused", async () => {
    const dir = await context('FROM $BASE_IMAGE\nRUN mkdir /out && echo hi > /out/hi && chown 42:43 /out/hi && ln -s hi /out/link\n');
    const local = join(work, 'export-dir');
    const tarFile = join(work, 'export.tar');
    const r = await build(['-q', '-o', `type=local,dest=${local}`, '--output', `type=tar,dest=${tarFile}`, dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(await readFile(join(local, 'out', 'hi'), 'utf8')).toBe('hi\n');
    const st = await lstat(join(local, 'out', 'hi'));
    expect([st.uid, st.gid]).toEqual([42, 43]);
    expect(await readlink(join(local, 'out', 'link'))).toBe('hi');
    const listing = execFileSync('tar', ['-tvf', tarFile, '--numeric-owner'], { encoding: 'utf8' });
    expect(listing).toMatch(/42\/43 .* out\/hi/);
    expect(listing).toMatch(/out\/link -> hi/);
    const again = await build(['-o', local, dir]);
    expect(again.code).toBe(125);
    expect(again.stderr).toContain('the directory is not empty');
    const stdout = await build(['-o', '-', dir]);
    expect(stdout.code).toBe(125);
    expect(stdout.stderr).toContain('a tar on stdout is not supported');
  });

  it('--source-date-epoch is --timestamp (same digest); --rewrite-timestamp is accepted', async () => {
    const dir = await context('FROM $BASE_IMAGE\nCOPY a.txt /\n', { 'a.txt': 'a' });
    const a = await build(['-q', '--no-cache', '--timestamp', '1700000000', dir]);
    const b = await build(['-q', '--no-cache', '--source-date-epoch', '1700000000', '--rewrite-timestamp', dir]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toBe(a.stdout);
    const bad = await build(['--source-date-epoch', 'yesterday', dir]);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain('--source-date-epoch must be Unix seconds');
  });
});
