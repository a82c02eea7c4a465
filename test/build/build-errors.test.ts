/**
 * Bad input and failures through the real `stevedore build`: each gives a clear message naming the
 * file, line and instruction, the right exit code (1 for a failed step, 125 for anything else) and
 * a `--result-file` reason; an interrupted build tags nothing.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupCli, cliTempDir, ensureBuilt, REPO_ROOT, stevedore } from '../cli/stevedore.js';
import { makeBusyboxImage } from '../../hack/lib/harness/images.js';

let work: string;
let store: string;
let baseRef: string;

beforeAll(async () => {
  work = await cliTempDir('build-errors');
  store = join(work, 'store');
  baseRef = (await makeBusyboxImage(join(work, 'busybox'), 'bb')).ociRef;
});

afterAll(async () => {
  await cleanupCli();
});

let n = 0;
/** A context dir holding the Containerfile (with BASE substituted) and the given files. */
async function context(containerfile: string, files: Record<string, string> = {}): Promise<string> {
  const dir = join(work, `ctx-${++n}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'Containerfile'), containerfile.replaceAll('$BASE_IMAGE', baseRef));
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
  return dir;
}

async function build(
  dir: string,
  extra: string[] = [],
): Promise<{ code: number; stderr: string; stdout: string; result: { error?: { reason: string; message: string }; digest?: string } }> {
  const resultFile = join(dir, 'result.json');
  const r = await stevedore(['build', '--root', store, '--result-file', resultFile, ...extra, dir], { timeoutMs: 120_000 });
  return { code: r.code ?? -1, stderr: r.stderr, stdout: r.stdout, result: JSON.parse(await readFile(resultFile, 'utf8')) };
}

describe('stevedore build: bad input', () => {
  it('a syntax error names the file and line, exits 125, reason InvalidContainerfile', async () => {
    const dir = await context('FROM $BASE_IMAGE\nCOPY onlyone\n');
    const r = await build(dir);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/Containerfile:2: COPY: COPY requires at least two arguments/);
    expect(r.result.error?.reason).toBe('InvalidContainerfile');
  });

  it('an unknown instruction suggests the right one', async () => {
    const dir = await context('FROM $BASE_IMAGE\nCOPPY a b\n');
    const r = await build(dir);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/Containerfile:2: unknown instruction "COPPY" \(did you mean COPY\?\)/);
    expect(r.result.error?.reason).toBe('InvalidContainerfile');
  });

  it('a missing --target stage is named', async () => {
    const dir = await context('FROM $BASE_IMAGE AS builder\nFROM builder\n');
    const r = await build(dir, ['--target', 'buidler']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/target stage "buidler" could not be found \(did you mean builder\?\)/);
  });

  it('COPY --from a stage name that does not exist fails as a missing source', async () => {
    // The base is pulled by a first build, so --pull=never keeps the unknown name off the network.
    expect((await build(await context('FROM $BASE_IMAGE\n'))).code).toBe(0);
    const dir = await context('FROM $BASE_IMAGE\nCOPY --from=nosuchstage /x /x\n');
    const r = await build(dir, ['--pull', 'never']);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('nosuchstage');
    expect(r.result.error?.reason).toBe('SourceNotFound');
  });

  it('a missing COPY source is named with its line', async () => {
    const dir = await context('FROM $BASE_IMAGE\nCOPY present.txt /\nCOPY missing.txt /dst/\n', { 'present.txt': 'here\n' });
    const r = await build(dir);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Containerfile:3/);
    expect(r.stderr).toContain('missing.txt');
    expect(r.result.error?.reason).toBe('SourceNotFound');
  });

  it('COPY whose wildcards all match nothing fails naming each of them (one matching is enough: corpus 17)', async () => {
    const dir = await context('FROM $BASE_IMAGE\nCOPY yarn.lock* *.nothing /app/\n', { 'package.json': '{}' });
    const r = await build(dir);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/Containerfile:2: .*COPY sources "yarn\.lock\*", "\*\.nothing": no file in the build context matches/);
    expect(r.result.error?.reason).toBe('SourceNotFound');
  });

  it('COPY of a file the .dockerignore hides says so', async () => {
    const dir = await context('FROM $BASE_IMAGE\nCOPY secret.env /\n', { 'secret.env': 'X=1\n', '.dockerignore': '*.env\n' });
    const r = await build(dir);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/Containerfile:2: .*COPY source "secret\.env": not found in the build context: it is excluded by \.dockerignore/);
    expect(r.result.error?.reason).toBe('SourceNotFound');
  });

  it('a missing RUN --mount=type=bind source says RUN --mount with file:line (not "COPY source")', async () => {
    const dir = await context('FROM $BASE_IMAGE\nRUN true\nRUN --mount=type=bind,source=nope,target=/x true\n');
    const r = await build(dir);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/Containerfile:3: RUN --mount=type=bind,source=nope: not found in the build context/);
    expect(r.stderr).not.toContain('COPY');
    expect(r.result.error?.reason).toBe('SourceNotFound');
  });

  it('a failing RUN shows its exit code and last output lines; exits with that code (as buildah), reason BuildStepFailed', async () => {
    const dir = await context('FROM $BASE_IMAGE\nENV X=1\nRUN echo first line; echo "error: it broke" >&2; exit 3\n');
    const r = await build(dir);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/Containerfile:3: RUN echo first line.*command exited with code 3/);
    expect(r.stderr).toContain('| error: it broke');
    expect(r.result.error?.reason).toBe('BuildStepFailed');
    expect(r.result.error?.message).toContain('error: it broke');
  });

  it('independent stages build in parallel, and the first failure stops the others', async () => {
    const dir = await context(
      'FROM $BASE_IMAGE AS slow\nRUN sleep 60\nFROM $BASE_IMAGE AS fails\nRUN exit 7\nFROM $BASE_IMAGE\nCOPY --from=slow /bin/sh /a\nCOPY --from=fails /bin/sh /b\n',
    );
    const t0 = Date.now();
    const r = await build(dir);
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(r.code).toBe(7);
    expect(r.stderr).toMatch(/Containerfile:4: RUN exit 7: command exited with code 7/);
    expect(r.result.error?.reason).toBe('BuildStepFailed');
  }, 60_000);

  it('a RUN whose command does not exist reports 127', async () => {
    const dir = await context('FROM $BASE_IMAGE\nRUN ["/no/such/program"]\n');
    const r = await build(dir);
    expect(r.code).toBe(127);
    expect(r.stderr).toMatch(/Containerfile:2: RUN \["\/no\/such\/program"\].*127/);
  });
});

describe('stevedore build: interrupted', () => {
  it('SIGINT during a RUN stops the build, tags nothing, and says Interrupted', async () => {
    await ensureBuilt();
    const dir = await context('FROM $BASE_IMAGE\nRUN echo started; sleep 60\n');
    const out = join(work, 'interrupted-layout');
    const resultFile = join(dir, 'result.json');
    const child = spawn(
      process.execPath,
      [
        join(REPO_ROOT, 'bin', 'stevedore.js'),
        'build',
        '--root',
        store,
        '--result-file',
        resultFile,
        '-t',
        `oci:${out}:never`,
        '-t',
        'localhost/interrupted:1',
        dir,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    const started = new Promise<void>((resolve) => {
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString();
        if (/^started$/m.test(stderr)) resolve();
      });
    });
    const exited = new Promise<number>((resolve) => child.once('close', (code) => resolve(code ?? -1)));
    await started;
    const t0 = Date.now();
    child.kill('SIGINT');
    const code = await exited;
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(code, stderr).not.toBe(0);
    expect(JSON.parse(await readFile(resultFile, 'utf8')).error.reason).toBe('Interrupted');
    expect(existsSync(join(out, 'index.json'))).toBe(false);
    const images = await stevedore(['images', '--root', store]);
    expect(images.stdout).not.toContain('interrupted');
  }, 60_000);
});
