/**
 * The whole build rootless: the engine runs as root only inside a user namespace mapped onto an
 * unprivileged host range (as after a rootless user's `unshare --map-root-user --map-auto` re-exec),
 * made by test/runtime/userns-helper.py. COPY, RUN on the overlay (a USER switch, a deletion) and the
 * layout output all work, and the layers record the container's ids, not the host's.
 */
import { spawn } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, REPO_ROOT } from '../cli/stevedore.js';
import { makeBusyboxImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { flatten } from './corpus/harness.js';

const HELPER = join(REPO_ROOT, 'test', 'runtime', 'userns-helper.py');
// The compiled CLI (the parser uses TypeScript syntax that Node's type stripping does not run).
const MAIN = resolve(REPO_ROOT, 'dist', 'cli', 'main.js');
const BASE = 300000;

let dir: string;
let image: FixtureImage;

async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  await chown(path, uid, gid);
  if (!(await stat(path)).isDirectory()) return;
  for (const name of await readdir(path)) await chownTree(join(path, name), uid, gid);
}

function runInUserns(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const code = `const m = await import(${JSON.stringify(MAIN)}); await m.main(['node', 'stevedore', ...process.argv.slice(1)]);`;
  return new Promise((resolvePromise, reject) => {
    const child = spawn('python3', [HELPER, String(BASE), '65536', process.execPath, '--input-type=module', '-e', code, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, STEVEDORE_ROOT: join(dir, 'store'), HOME: dir, TMPDIR: join(dir, 'tmp') },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (c) => resolvePromise({ code: c ?? 255, stdout, stderr }));
  });
}

beforeAll(async () => {
  await ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), 'stevedore-build-rootless-'));
  image = await makeBusyboxImage(join(dir, 'layout'), 'bb');
  await mkdir(join(dir, 'tmp'));
  await mkdir(join(dir, 'ctx'));
  await writeFile(join(dir, 'ctx', 'input.txt'), 'from the context\n');
  await writeFile(
    join(dir, 'ctx', 'Containerfile'),
    `FROM ${image.ociRef}\nCOPY --chown=nobody:nobody input.txt /data/input.txt\nRUN rm /bin/false && cat /data/input.txt > /data/by-root.txt\nUSER nobody\nRUN echo by-nobody > /tmp/by-nobody.txt\n`,
  );
  await chownTree(dir, BASE, BASE);
  await chmod(dir, 0o755);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('rootless: stevedore build inside a user namespace', () => {
  it('builds COPY and RUN layers with the container ids, on an overlay', async () => {
    const out = join(dir, 'out');
    const r = await runInUserns(['build', '--log-level', 'debug', '-q', '-t', `oci:${out}:built`, join(dir, 'ctx')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(r.stderr).toMatch(/"rootfs":"overlay"/);
    const fs = await flatten(out, 'built');
    expect(fs.get('/data/input.txt')).toMatchObject({ uid: 65534, gid: 65534 });
    expect(fs.get('/data/by-root.txt')).toMatchObject({ type: 'file', uid: 0, gid: 0 });
    expect(fs.get('/tmp/by-nobody.txt')).toMatchObject({ type: 'file', uid: 65534, gid: 65534 });
    expect(fs.has('/bin/false')).toBe(false);
    expect(fs.has('/bin/true')).toBe(true);
  }, 120_000);

  it('a base layout whose index.json it cannot read is a permission error naming the file, not "no image"', async () => {
    const locked = join(dir, 'locked');
    await makeBusyboxImage(locked, 'bb');
    await chownTree(locked, BASE, BASE);
    // Owned by the host's root, mode 0600: outside the namespace's range, so unreadable inside it.
    await chown(join(locked, 'index.json'), 0, 0);
    await chmod(join(locked, 'index.json'), 0o600);
    await mkdir(join(dir, 'ctx-locked'));
    await writeFile(join(dir, 'ctx-locked', 'Containerfile'), `FROM oci:${locked}:bb\nRUN true\n`);
    await chownTree(join(dir, 'ctx-locked'), BASE, BASE);
    const r = await runInUserns(['build', '-q', join(dir, 'ctx-locked')]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain(`${join(locked, 'index.json')}: permission denied`);
    expect(r.stderr).toContain('[PERMISSION_DENIED]');
  }, 120_000);
});
