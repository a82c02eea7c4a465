/**
 * Build contexts from a URL: a Git repository served by a real `git daemon` on loopback
 * (`git://127.0.0.1:PORT/repo.git#ref:subdir`), and an http tar archive. The checkout's `.git` is
 * not part of the context, a subdirectory cannot lead out of the checkout, a relative -f names a
 * file inside the context, and failures name the URL.
 */
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { remoteContextOf } from '../../src/build/context/remote.js';
import { cleanupCli, cliTempDir, stevedore } from '../cli/stevedore.js';
import { makeBusyboxImage } from '../../hack/lib/harness/images.js';
import { freePort, LOOPBACK, sleep } from '../../hack/lib/harness/net.js';
import { spawnManaged, type ManagedProcess } from '../../hack/lib/harness/procs.js';
import { fileText, flatten } from './corpus/harness.js';

describe('remoteContextOf: which arguments are URLs', () => {
  it.each([
    ['https://example.test/org/app.git', { kind: 'git', url: 'https://example.test/org/app.git' }],
    ['https://example.test/org/app.git#v1.2:web', { kind: 'git', url: 'https://example.test/org/app.git', ref: 'v1.2', subdir: 'web' }],
    ['git://127.0.0.1:9418/repo.git#:sub/dir', { kind: 'git', url: 'git://127.0.0.1:9418/repo.git', subdir: 'sub/dir' }],
    ['git@example.test:org/app.git#main', { kind: 'git', url: 'git@example.test:org/app.git', ref: 'main' }],
    ['github.com/org/app', { kind: 'git', url: 'https://github.com/org/app' }],
    ['https://example.test/ctx.tar.gz', { kind: 'http', url: 'https://example.test/ctx.tar.gz' }],
    ['.', undefined],
    ['some/dir#not-a-url', undefined],
    ['-', undefined],
  ])('%s', (spec, want) => {
    expect(remoteContextOf(spec)).toEqual(want);
  });

  it('refuses a ref git would read as an option', () => {
    expect(() => remoteContextOf('https://example.test/a.git#--upload-pack=evil')).toThrow(/is not a Git ref/);
  });
});

let work: string;
let store: string;
let base: string;
let daemon: ManagedProcess | undefined;
let http: Server | undefined;
let gitPort: number;
let httpPort: number;

beforeAll(async () => {
  work = await cliTempDir('ctx-remote');
  store = join(work, 'store');
  base = (await makeBusyboxImage(join(work, 'busybox'), 'bb')).ociRef;
  // A repository with the context in app/ on branch release, and another Containerfile at the top.
  const repo = join(work, 'src');
  await mkdir(join(repo, 'app'), { recursive: true });
  await writeFile(join(repo, 'Containerfile'), `FROM ${base}\nCOPY . /top/\n`);
  await writeFile(join(repo, 'app', 'Containerfile'), `FROM ${base}\nCOPY . /ctx/\n`);
  await writeFile(join(repo, 'app', 'Other.containerfile'), `FROM ${base}\nCOPY hello.txt /other.txt\n`);
  await writeFile(join(repo, 'app', 'hello.txt'), 'hello from git\n');
  await symlink('/etc', join(repo, 'escape'));
  const git = (...args: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { stdio: 'pipe' });
  git('init', '-q', '-b', 'main');
  git('add', '.');
  git('commit', '-qm', 'one');
  git('checkout', '-qb', 'release');
  await writeFile(join(repo, 'app', 'hello.txt'), 'hello from release\n');
  git('commit', '-qam', 'two');
  git('checkout', '-q', 'main');
  const served = join(work, 'served');
  await mkdir(served);
  execFileSync('git', ['clone', '-q', '--bare', repo, join(served, 'repo.git')]);
  gitPort = await freePort();
  daemon = await spawnManaged('git', ['daemon', `--listen=${LOOPBACK}`, `--port=${gitPort}`, '--reuseaddr', '--export-all', `--base-path=${served}`, served]);
  for (let i = 0; i < 50; i++) {
    try {
      execFileSync('git', ['ls-remote', `git://${LOOPBACK}:${gitPort}/repo.git`], { stdio: 'pipe' });
      break;
    } catch {
      await sleep(100);
    }
  }
  // An http server with the app directory as a tar.gz.
  const archive = join(work, 'app.tar.gz');
  execFileSync('tar', ['-C', join(repo, 'app'), '-czf', archive, '.']);
  httpPort = await freePort();
  http = createServer((req, res) => {
    if (req.url === '/app.tar.gz') createReadStream(archive).pipe(res);
    else res.writeHead(404).end('not here');
  });
  await new Promise<void>((r) => http!.listen(httpPort, LOOPBACK, r));
}, 120_000);

afterAll(async () => {
  await daemon?.stop();
  await new Promise<void>((r) => (http ? http.close(() => r()) : r()));
  await cleanupCli();
});

function build(args: string[]) {
  return stevedore(['build', '--root', store, '-q', ...args], { timeoutMs: 120_000 });
}

describe('stevedore build from a Git URL (git daemon on loopback)', () => {
  it('#ref:subdir builds that revision of that directory; .git is not in the context', async () => {
    const out = join(work, 'git-out');
    const r = await build(['-t', `oci:${out}:release`, `git://${LOOPBACK}:${gitPort}/repo.git#release:app`]);
    expect(r.code, r.stderr).toBe(0);
    expect(await fileText(out, 'release', 'ctx/hello.txt')).toBe('hello from release\n');
    const fs = await flatten(out, 'release');
    expect([...fs.keys()].filter((p) => p.startsWith('/ctx/')).sort()).toEqual(['/ctx/Containerfile', '/ctx/Other.containerfile', '/ctx/hello.txt']);
  });

  it('no fragment: the default branch at the top; a relative -f is a file in the context', async () => {
    const out = join(work, 'git-out-2');
    const top = await build(['-t', `oci:${out}:top`, `git://${LOOPBACK}:${gitPort}/repo.git`]);
    expect(top.code, top.stderr).toBe(0);
    expect(await fileText(out, 'top', 'top/app/hello.txt')).toBe('hello from git\n');
    expect(await fileText(out, 'top', 'top/.git/HEAD')).toBeUndefined();
    const other = await build(['-f', 'Other.containerfile', '-t', `oci:${out}:other`, `git://${LOOPBACK}:${gitPort}/repo.git#main:app`]);
    expect(other.code, other.stderr).toBe(0);
    expect(await fileText(out, 'other', 'other.txt')).toBe('hello from git\n');
  });

  it('a subdirectory that is a symlink out of the checkout stays inside it (and is then not found)', async () => {
    const r = await build([`git://${LOOPBACK}:${gitPort}/repo.git#main:escape`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('"escape" is not a directory at main');
  });

  it('a revision that does not exist names the URL and what git said', async () => {
    const r = await build([`git://${LOOPBACK}:${gitPort}/repo.git#nosuchbranch`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/build context git:\/\/127\.0\.0\.1:\d+\/repo\.git#nosuchbranch: git fetch failed: .*nosuchbranch/);
  });
});

describe('ADD of a Git repository (git daemon on loopback)', () => {
  it('ADD git://…#ref:dir copies that tree without .git; --keep-git-dir keeps it; a bad ref names the source and line', async () => {
    const ctxDir = join(work, 'add-git');
    await mkdir(ctxDir);
    const url = `git://${LOOPBACK}:${gitPort}/repo.git`;
    await writeFile(join(ctxDir, 'Containerfile'), `FROM ${base}\nADD ${url}#release:app /src/\nADD --keep-git-dir ${url} /whole/\n`);
    const out = join(work, 'add-git-out');
    const r = await build(['-t', `oci:${out}:x`, ctxDir]);
    expect(r.code, r.stderr).toBe(0);
    expect(await fileText(out, 'x', 'src/hello.txt')).toBe('hello from release\n');
    const fs = await flatten(out, 'x');
    expect(fs.has('/src/.git')).toBe(false);
    expect(fs.has('/whole/.git/HEAD')).toBe(true);
    expect(await fileText(out, 'x', 'whole/app/hello.txt')).toBe('hello from git\n');
    await writeFile(join(ctxDir, 'Containerfile'), `FROM ${base}\nRUN true\nADD ${url}#nosuch /x/\n`);
    const bad = await build([ctxDir]);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toMatch(/Containerfile:3: ADD git:\/\/127\.0\.0\.1:\d+\/repo\.git#nosuch: git fetch failed/);
  });
});

describe('stevedore build from an http tar archive', () => {
  it('downloads and extracts it as the context', async () => {
    const out = join(work, 'http-out');
    const r = await build(['-t', `oci:${out}:x`, `http://${LOOPBACK}:${httpPort}/app.tar.gz`]);
    expect(r.code, r.stderr).toBe(0);
    expect(await fileText(out, 'x', 'ctx/hello.txt')).toBe('hello from git\n');
  });

  it('a 404 names the URL', async () => {
    const r = await build([`http://${LOOPBACK}:${httpPort}/missing.tar`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/build context http:\/\/127\.0\.0\.1:\d+\/missing\.tar: .*404/);
  });
});
