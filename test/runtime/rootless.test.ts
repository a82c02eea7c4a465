/**
 * The whole path (pull, unpack with chown, overlay rootfs, runc) run by an engine that is root only
 * inside a user namespace mapped onto an unprivileged host range, as after a rootless user's
 * `unshare --map-root-user --map-auto` re-exec. The namespace is made by test/runtime/userns-helper.py
 * (root writes the maps itself, so no /etc/subuid entries are needed on the test machine).
 */
import { spawn } from 'node:child_process';
import { chmod, chown, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBusyboxImage, type FixtureImage } from '../../hack/lib/harness/images.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const HOOKS = join(HERE, 'ts-hooks.mjs');
const HELPER = join(HERE, 'userns-helper.py');
const MAIN = resolve(HERE, '..', '..', 'src', 'cli', 'main.ts');
const BASE = 400000;

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
    const child = spawn('python3', [HELPER, String(BASE), '65536', process.execPath, '--import', HOOKS, '--input-type=module', '-e', code, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, STEVEDORE_ROOT: join(dir, 'store'), HOME: dir },
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
  dir = await mkdtemp(join(tmpdir(), 'stevedore-rootless-'));
  image = await makeBusyboxImage(join(dir, 'layout'), 'bb');
  // The namespace's root is host uid BASE: it owns its data, and reaches it through `dir`.
  await chownTree(dir, BASE, BASE);
  await chmod(dir, 0o755);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('rootless: the engine inside a user namespace', () => {
  it('pulls, unpacks, runs; container root is the unprivileged host uid', async () => {
    const r = await runInUserns(['run', '--memory', '64m', image.ociRef, 'sh', '-c', 'id -u; cat /proc/self/uid_map; echo x > /made-by-root; exit 5']);
    expect(r.code, r.stderr).toBe(5);
    const [uid, map] = r.stdout.trim().split('\n');
    expect(uid).toBe('0');
    expect(map!.trim().split(/\s+/)).toEqual(['0', String(BASE), '65536']);
    // No cgroup can be made rootless here: the limit is dropped with a warning.
    expect(r.stderr).toMatch(/memory cgroup controller is not delegated/);
    const containers = await readdir(join(dir, 'store', 'containers'));
    expect(containers).toHaveLength(1);
    const made = await stat(join(dir, 'store', 'containers', containers[0]!, 'upper', 'made-by-root'));
    expect([made.uid, made.gid]).toEqual([BASE, BASE]);
    // The unpacked image belongs to the namespace's root too: nothing in the store is host root's.
    const snaps = (await readdir(join(dir, 'store', 'snapshots'))).filter((n) => !n.startsWith('.'));
    expect((await stat(join(dir, 'store', 'snapshots', snaps[0]!, 'rootfs', 'bin', 'busybox'))).uid).toBe(BASE);
  });
});
