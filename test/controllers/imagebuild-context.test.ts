/**
 * Build contexts for build Pods, through the real CLI against a real registry: `context push`
 * packs a directory as an OCI artifact, `context fetch` extracts it; `context git` fetches a real
 * repository; `context inline` and `context auth` prepare what the build step reads.
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { createGzip } from 'node:zlib';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pack as tarPack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTEXT_ARTIFACT_TYPE } from '../../src/build/remote/artifact.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { cleanupCli, cliTempDir, stevedore } from '../cli/stevedore.js';

let reg: TestRegistry;

beforeAll(async () => {
  reg = await startRegistry({ name: 'ib-context' });
});
afterAll(async () => {
  await reg?.stop();
  await cleanupCli();
});

async function makeContext(): Promise<string> {
  const dir = await cliTempDir('ctx-src');
  await writeFile(join(dir, 'Containerfile'), 'FROM scratch\nCOPY . /app\n');
  await mkdir(join(dir, 'src', 'lib'), { recursive: true });
  await writeFile(join(dir, 'src', 'main.sh'), '#!/bin/sh\necho hi\n');
  await chmod(join(dir, 'src', 'main.sh'), 0o755);
  await writeFile(join(dir, 'src', 'lib', 'data.txt'), 'x'.repeat(100_000));
  await symlink('lib/data.txt', join(dir, 'src', 'link'));
  return dir;
}

async function manifestOf(repo: string, ref: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

describe('build context artifacts', () => {
  it('pushes a directory as a one-layer OCI artifact and fetches it back byte for byte, modes and symlinks kept', async () => {
    const src = await makeContext();
    const pushed = await stevedore(['context', 'push', src, `${reg.host}/ctx/app:v1`]);
    expect(pushed.code, pushed.stderr).toBe(0);
    const ref = pushed.stdout.trim();
    expect(ref).toMatch(new RegExp(`^${reg.host}/ctx/app@sha256:[0-9a-f]{64}$`));
    const m = await manifestOf('ctx/app', 'v1');
    expect(m.artifactType).toBe(CONTEXT_ARTIFACT_TYPE);
    expect((m.layers as unknown[]).length).toBe(1);

    const dest = await cliTempDir('ctx-dest');
    const resultFile = join(dest, '..', `result-${Date.now()}.json`);
    const got = await stevedore(['context', 'fetch', ref, join(dest, 'src'), '--result-file', resultFile]);
    expect(got.code, got.stderr).toBe(0);
    expect(JSON.parse(await readFile(resultFile, 'utf8'))).toEqual({ sourceCommit: ref.split('@')[1] });
    expect(await readFile(join(dest, 'src', 'Containerfile'), 'utf8')).toBe('FROM scratch\nCOPY . /app\n');
    expect(await readFile(join(dest, 'src', 'src', 'lib', 'data.txt'), 'utf8')).toBe('x'.repeat(100_000));
    expect((await stat(join(dest, 'src', 'src', 'main.sh'))).mode & 0o777).toBe(0o755);
    expect(await readlink(join(dest, 'src', 'src', 'link'))).toBe('lib/data.txt');
  });

  it('leaves out what .containerignore says (with ! exceptions) but always sends the Containerfile', async () => {
    const src = await makeContext();
    await writeFile(join(src, '.containerignore'), 'src/lib\n*.secret\nContainerfile\n!keep.secret\n');
    await writeFile(join(src, 'token.secret'), 'hunter2');
    await writeFile(join(src, 'keep.secret'), 'public');
    const pushed = await stevedore(['context', 'push', '-f', 'Containerfile', src, `${reg.host}/ctx/ignored:v1`]);
    expect(pushed.code, pushed.stderr).toBe(0);
    const dest = await cliTempDir('ctx-ignored');
    const got = await stevedore(['context', 'fetch', pushed.stdout.trim(), dest]);
    expect(got.code, got.stderr).toBe(0);
    await expect(stat(join(dest, 'token.secret'))).rejects.toThrow();
    await expect(stat(join(dest, 'src', 'lib'))).rejects.toThrow();
    expect(await readFile(join(dest, 'keep.secret'), 'utf8')).toBe('public');
    expect(await readFile(join(dest, 'Containerfile'), 'utf8')).toContain('FROM scratch');
    expect(await readFile(join(dest, 'src', 'main.sh'), 'utf8')).toContain('echo hi');
  });

  it('gives an unchanged context the same digest (nothing new to upload)', async () => {
    const src = await makeContext();
    const a = await stevedore(['context', 'push', src, `${reg.host}/ctx/same:a`]);
    const b = await stevedore(['context', 'push', src, `${reg.host}/ctx/same:b`]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.stdout.split('@')[1]).toBe(a.stdout.split('@')[1]);
  });

  it('refuses an artifact whose tar climbs out of the target directory, and reports SourceUnavailable', async () => {
    // A hostile context: a tar entry named ../escape.
    const pack = tarPack();
    pack.entry({ name: '../escape', size: 3 }, 'bad');
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const c of (pack as unknown as Readable).pipe(createGzip())) chunks.push(c as Buffer);
    const blob = Buffer.concat(chunks);
    const { createHash } = await import('node:crypto');
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const empty = Buffer.from('{}');
    const emptyDigest = `sha256:${createHash('sha256').update(empty).digest('hex')}`;
    for (const [d, body] of [
      [digest, blob],
      [emptyDigest, empty],
    ] as const) {
      const start = await fetch(`${reg.url}/v2/ctx/evil/blobs/uploads/`, { method: 'POST' });
      expect(start.status).toBe(202);
      const loc = new URL(start.headers.get('location')!, reg.url);
      loc.searchParams.set('digest', d);
      const res = await fetch(loc, { method: 'PUT', body, headers: { 'content-type': 'application/octet-stream' } });
      expect(res.status).toBe(201);
    }
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: CONTEXT_ARTIFACT_TYPE,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyDigest, size: 2 },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: blob.length }],
    });
    const put = await fetch(`${reg.url}/v2/ctx/evil/manifests/v1`, {
      method: 'PUT',
      body: manifest,
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(put.status).toBe(201);

    const dest = await cliTempDir('ctx-evil');
    const resultFile = join(dest, 'result.json');
    const got = await stevedore(['context', 'fetch', `${reg.host}/ctx/evil:v1`, join(dest, 'src'), '--result-file', resultFile]);
    expect(got.code).toBe(125);
    const result = JSON.parse(await readFile(resultFile, 'utf8')) as { error: { reason: string; message: string } };
    expect(result.error.reason).toBe('SourceUnavailable');
    expect(result.error.message).toMatch(/escape|outside|\.\./);
    await expect(stat(join(dest, 'escape'))).rejects.toThrow();
  });

  it('reports a missing artifact as SourceUnavailable naming it', async () => {
    const dest = await cliTempDir('ctx-missing');
    const resultFile = join(dest, 'result.json');
    const got = await stevedore(['context', 'fetch', `${reg.host}/ctx/nothing:v1`, join(dest, 'src'), '--result-file', resultFile]);
    expect(got.code).toBe(125);
    const result = JSON.parse(await readFile(resultFile, 'utf8')) as { error: { reason: string; message: string } };
    expect(result.error.reason).toBe('SourceUnavailable');
    expect(result.error.message).toMatch(/ctx\/nothing/);
  });
});

describe('git, inline and auth steps', () => {
  it('fetches one revision of a Git repository and reports its commit', async () => {
    const repo = await cliTempDir('git-repo');
    const g = (...args: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@e', ...args], { encoding: 'utf8' }).trim();
    g('init', '--quiet', '-b', 'main');
    await writeFile(join(repo, 'Containerfile'), 'FROM scratch\n');
    g('add', '.');
    g('commit', '--quiet', '-m', 'one');
    const first = g('rev-parse', 'HEAD');
    g('tag', 'v1');
    await writeFile(join(repo, 'Containerfile'), 'FROM scratch\nLABEL two=2\n');
    g('commit', '--quiet', '-am', 'two');
    const second = g('rev-parse', 'HEAD');

    const out = await cliTempDir('git-out');
    const atTag = await stevedore(['context', 'git', `file://${repo}`, join(out, 'a'), '--revision', 'v1', '--result-file', join(out, 'a.json')]);
    expect(atTag.code, atTag.stderr).toBe(0);
    expect(JSON.parse(await readFile(join(out, 'a.json'), 'utf8'))).toEqual({ sourceCommit: first });
    expect(await readFile(join(out, 'a', 'Containerfile'), 'utf8')).toBe('FROM scratch\n');
    const atHead = await stevedore(['context', 'git', `file://${repo}`, join(out, 'b'), '--result-file', join(out, 'b.json')]);
    expect(atHead.code, atHead.stderr).toBe(0);
    expect(JSON.parse(await readFile(join(out, 'b.json'), 'utf8'))).toEqual({ sourceCommit: second });

    const bad = await stevedore(['context', 'git', `file://${repo}`, join(out, 'c'), '--revision', 'no-such-branch', '--result-file', join(out, 'c.json')]);
    expect(bad.code).toBe(125);
    const err = JSON.parse(await readFile(join(out, 'c.json'), 'utf8')) as { error: { reason: string; message: string } };
    expect(err.error.reason).toBe('SourceUnavailable');
    expect(err.error.message).toMatch(/no-such-branch/);
  });

  it('writes an inline Containerfile, and refuses an empty one', async () => {
    const out = await cliTempDir('inline');
    const ok = await stevedore(['context', 'inline', join(out, 'ctx')], { env: { STEVEDORE_CONTAINERFILE: 'FROM scratch\nLABEL a=b\n' } });
    expect(ok.code, ok.stderr).toBe(0);
    expect(await readFile(join(out, 'ctx', 'Containerfile'), 'utf8')).toBe('FROM scratch\nLABEL a=b\n');
    const empty = await stevedore(['context', 'inline', join(out, 'ctx2')], { env: { STEVEDORE_CONTAINERFILE: '' } });
    expect(empty.code).toBe(125);
    expect(empty.stderr).toMatch(/STEVEDORE_CONTAINERFILE is empty/);
  });

  it('merges dockerconfigjson files into one auth file', async () => {
    const out = await cliTempDir('auth');
    await writeFile(join(out, 'push.json'), JSON.stringify({ auths: { 'a.example': { auth: Buffer.from('u:p').toString('base64') } } }));
    await writeFile(join(out, 'cache.json'), JSON.stringify({ auths: { 'b.example/cache': { username: 'c', password: 'd' } } }));
    const r = await stevedore(['context', 'auth', join(out, 'config.json'), join(out, 'push.json'), join(out, 'cache.json')]);
    expect(r.code, r.stderr).toBe(0);
    const merged = JSON.parse(await readFile(join(out, 'config.json'), 'utf8')) as { auths: Record<string, unknown> };
    expect(Object.keys(merged.auths).sort()).toEqual(['a.example', 'b.example/cache']);
    expect((await stat(join(out, 'config.json'))).mode & 0o777).toBe(0o600);
  });
});
