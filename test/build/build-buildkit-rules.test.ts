/**
 * Where buildah 1.28 and BuildKit disagree, Stevedore follows BuildKit (docs/build-differences.md).
 * Each rule through the real `stevedore build`: a `.dockerignore` exception with a wildcard
 * directory re-includes below an excluded directory; VOLUME creates no directory and writes under
 * it are kept; ADD --chown applies to an unpacked archive's files; duplicate stage names are
 * refused; `FROM 0` names an image, not stage 0. And the hostile cases of the new sources: a cache
 * seed or a named context reached through a symlink pointing out of it stays inside it.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupCli, cliTempDir, stevedore } from '../cli/stevedore.js';
import { makeBusyboxImage } from '../../hack/lib/harness/images.js';
import { fileText, flatten } from './corpus/harness.js';

let work: string;
let store: string;
let base: string;

beforeAll(async () => {
  work = await cliTempDir('buildkit-rules');
  store = join(work, 'store');
  base = (await makeBusyboxImage(join(work, 'busybox'), 'bb')).ociRef;
}, 60_000);
afterAll(() => cleanupCli());

let n = 0;
async function context(containerfile: string, files: Record<string, string> = {}): Promise<string> {
  const dir = join(work, `ctx-${++n}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'Containerfile'), containerfile.replaceAll('$BASE_IMAGE', base));
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), content);
  }
  return dir;
}

async function build(dir: string, ref: string, extra: string[] = []) {
  const out = join(work, 'out');
  const r = await stevedore(['build', '--root', store, '-q', ...extra, '-t', `oci:${out}:${ref}`, dir], { timeoutMs: 120_000 });
  return { ...r, out };
}

describe('BuildKit over buildah', () => {
  it('.dockerignore: `subdir` then `!*/sub1*` re-includes subdir/sub1.txt (buildah 1.28 keeps it out)', async () => {
    const dir = await context('FROM $BASE_IMAGE\nCOPY . /ctx/\n', {
      '.dockerignore': 'subdir\n!*/sub1*\nContainerfile\n',
      'subdir/sub1.txt': '1',
      'subdir/sub2.txt': '2',
      'top.txt': 't',
    });
    const r = await build(dir, 'ignore');
    expect(r.code, r.stderr).toBe(0);
    const fs = await flatten(r.out, 'ignore');
    expect([...fs.keys()].filter((k) => k.startsWith('/ctx/')).sort()).toEqual(['/ctx/.dockerignore', '/ctx/subdir', '/ctx/subdir/sub1.txt', '/ctx/top.txt']);
  });

  it('VOLUME creates no directory, and what a later RUN writes under it is kept (buildah creates it and drops the writes)', async () => {
    const dir = await context('FROM $BASE_IMAGE\nVOLUME /vol /data\nRUN mkdir -p /vol && echo kept > /vol/f\n');
    const r = await build(dir, 'volume');
    expect(r.code, r.stderr).toBe(0);
    expect(await fileText(r.out, 'volume', 'vol/f')).toBe('kept\n');
    expect((await flatten(r.out, 'volume')).has('/data')).toBe(false);
  });

  it('ADD --chown applies to the files of an unpacked archive (buildah keeps the archive owners)', async () => {
    const dir = await context('FROM $BASE_IMAGE\nADD --chown=42:43 arch.tar /un/\n');
    const src = join(work, 'arch-src');
    await mkdir(src);
    await writeFile(join(src, 'f'), 'x\n');
    execFileSync('tar', ['--owner=1234', '--group=5678', '-C', src, '-cf', join(dir, 'arch.tar'), 'f']);
    const r = await build(dir, 'addchown');
    expect(r.code, r.stderr).toBe(0);
    expect((await flatten(r.out, 'addchown')).get('/un/f')).toMatchObject({ uid: 42, gid: 43 });
  });

  it('two stages of the same name are refused, naming both lines (buildah 1.28 takes the last)', async () => {
    const dir = await context('FROM $BASE_IMAGE AS a\nFROM $BASE_IMAGE AS a\nFROM $BASE_IMAGE\nCOPY --from=a /bin/sh /x\n');
    const r = await build(dir, 'dup');
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('Containerfile:2: FROM: duplicate stage name "a" (first defined on line 1)');
  });

  it('FROM 0 names an image called 0, not the first stage', async () => {
    const dir = await context('FROM $BASE_IMAGE\nFROM 0\n');
    const r = await build(dir, 'zero', ['--pull', 'never']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/image "0": image docker\.io\/library\/0:latest: not in the local store/);
  });
});

describe('hostile Containerfiles stay inside what they may read', () => {
  it('RUN --mount=type=bind of the context shows only what .dockerignore lets through (as BuildKit sends it)', async () => {
    const dir = await context(
      'FROM $BASE_IMAGE\nRUN --mount=type=bind,target=/ctx ls -a /ctx /ctx/sub > /seen.txt\nRUN --mount=type=bind,source=sub,target=/s,rw ls /s > /seen-rw.txt\n',
      {
        '.dockerignore': '.env\nsub/*.key\n',
        '.env': 'TOKEN=hidden',
        'app.txt': 'a',
        'sub/ok.txt': 'ok',
        'sub/private.key': 'k',
      },
    );
    const r = await build(dir, 'bind-ignore');
    expect(r.code, r.stderr).toBe(0);
    const seen = await fileText(r.out, 'bind-ignore', 'seen.txt');
    expect(seen).toContain('app.txt');
    expect(seen).toContain('ok.txt');
    expect(seen).not.toContain('.env');
    expect(seen).not.toContain('private.key');
    expect(await fileText(r.out, 'bind-ignore', 'seen-rw.txt')).toBe('ok.txt\n');
  });

  it('a cache mount seeded from a stage path that is a symlink out of it sees the stage, not the host', async () => {
    const dir = await context(
      'FROM $BASE_IMAGE AS seed\nRUN ln -s ../../../../../../etc /escape\nFROM $BASE_IMAGE\nRUN --mount=type=cache,from=seed,source=/escape,target=/c ls /c > /listed.txt\n',
    );
    const r = await build(dir, 'seed-escape');
    expect(r.code, r.stderr).toBe(0);
    // The stage's /etc (busybox: group, passwd), never the host's (os-release, hostname, ...).
    expect(await fileText(r.out, 'seed-escape', 'listed.txt')).toBe('group\npasswd\n');
  });

  it('a --build-context of files cannot be read outside through a symlink in a COPY source', async () => {
    const named = join(work, 'named-hostile');
    await mkdir(named, { recursive: true });
    const { symlink } = await import('node:fs/promises');
    await symlink('/etc/hostname', join(named, 'host-file'));
    const dir = await context('FROM $BASE_IMAGE\nCOPY --from=files host-file /got\n');
    const r = await build(dir, 'named-escape', ['--build-context', `files=${named}`]);
    // The link is followed inside the named context only: there is no /etc/hostname in it.
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('COPY source "host-file": not found in build context "files"');
  });
});
