/**
 * `stevedore run` as a user runs it (a child process on the TypeScript sources), and side by side
 * with `podman run` (runc, cgroupfs) on the same image, loaded into containers-storage with skopeo.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBusyboxImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { runCommand } from '../../hack/lib/harness/procs.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { skopeo } from '../harness/skopeo.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const HOOKS = join(HERE, 'ts-hooks.mjs');
const MAIN = resolve(HERE, '..', '..', 'src', 'cli', 'main.ts');

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

function spawnOutcome(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Outcome> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code: code ?? 255, stdout, stderr });
    });
  });
}

let dir: string;
let storeRoot: string;
let image: FixtureImage;

function stevedore(args: string[]): Promise<Outcome> {
  const code = `const m = await import(${JSON.stringify(MAIN)}); await m.main(['node', 'stevedore', ...process.argv.slice(1)]);`;
  return spawnOutcome(process.execPath, ['--import', HOOKS, '--input-type=module', '-e', code, ...args], { ...process.env, STEVEDORE_ROOT: storeRoot });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stevedore-cli-run-'));
  storeRoot = join(dir, 'store');
  image = await makeBusyboxImage(join(dir, 'layout'), 'bb');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('stevedore run (CLI)', () => {
  it('prints the output and exits with the container status', async () => {
    const r = await stevedore(['run', '--rm', image.ociRef, 'sh', '-c', 'echo hi; exit 3']);
    expect(r.stdout).toBe('hi\n');
    expect(r.code).toBe(3);
  });

  it('reads -e, --env-file, -w, -u and --read-only', async () => {
    const envFile = join(dir, 'env');
    await writeFile(envFile, '# comment\nA=from-file\nB=2\n');
    const r = await stevedore([
      'run',
      '--rm',
      '--env-file',
      envFile,
      '-e',
      'B=3',
      '-w',
      '/tmp',
      '-u',
      'nobody',
      '--read-only',
      image.ociRef,
      'sh',
      '-c',
      'echo $A $B $(pwd) $(id -u); echo x > /f',
    ]);
    expect(r.stdout).toBe('from-file 3 /tmp 65534\n');
    expect(r.code).toBe(1);
  });

  it('exits 127 for a missing command, 126 for one that cannot run or an unknown user, 125 for its own errors', async () => {
    expect((await stevedore(['run', '--rm', image.ociRef, 'nosuchcommand'])).code).toBe(127);
    expect((await stevedore(['run', '--rm', image.ociRef, '/etc/passwd'])).code).toBe(126);
    expect((await stevedore(['run', '--rm', '-u', 'nosuchuser', image.ociRef, 'true'])).code).toBe(126);
    const bad = await stevedore(['run', '--rm', '--network', 'bridge', image.ociRef, 'true']);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toMatch(/--network must be one of none, host/);
    expect((await stevedore(['run', '--rm', '--pull', 'never', 'localhost/absent:1', 'true'])).code).toBe(125);
  });

  it('--timeout ends the run with DeadlineExceeded', async () => {
    // As podman's --timeout: SIGKILL (the TERM trap never runs) and status 255.
    const r = await stevedore(['run', '--rm', '--timeout', '1', image.ociRef, 'sh', '-c', 'trap "exit 9" TERM; busybox sleep 20 & wait']);
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/DeadlineExceeded/);
  });

  it('--runtime crun says why it cannot run on a hybrid-cgroup host', async () => {
    const { cgroupMode } = await import('../../src/runtime/cgroups.js');
    if (cgroupMode() !== 'hybrid') return;
    const r = await stevedore(['run', '--rm', '--runtime', 'crun', image.ociRef, 'true']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/crun cannot run here: .*use --runtime runc/);
  });

  it('keeps a container without --rm: ps -a, logs, rm; names are unique', async () => {
    const r = await stevedore(['run', '--name', 'keeper', image.ociRef, 'sh', '-c', 'echo out; echo err >&2; exit 4']);
    expect(r.code).toBe(4);
    const dup = await stevedore(['run', '--name', 'keeper', image.ociRef, 'true']);
    expect(dup.code).toBe(125);
    expect(dup.stderr).toMatch(/name "keeper" is already in use/);
    expect((await stevedore(['ps'])).stdout).not.toContain('keeper');
    const ps = await stevedore(['ps', '-a']);
    expect(ps.stdout).toMatch(/^CONTAINER ID\s+IMAGE\s+COMMAND\s+STATUS\s+NAMES\n/);
    expect(ps.stdout).toMatch(/[0-9a-f]{12}\s+localhost\/layout:bb\s+sh -c echo out; .*Exited \(4\)\s+keeper/);
    const logs = await stevedore(['logs', 'keeper']);
    expect([logs.stdout, logs.stderr]).toEqual(['out\n', 'err\n']);
    expect((await stevedore(['rm', 'keeper'])).code).toBe(0);
    expect((await stevedore(['ps', '-a'])).stdout).not.toContain('keeper');
    expect((await stevedore(['logs', 'keeper'])).code).toBe(125);
  });

  it('-d runs in the background: ps shows it Up, logs -f follows it, stop ends it (SIGTERM), a start failure is still 127', async () => {
    const d = await stevedore([
      'run',
      '-d',
      '--name',
      'bg',
      image.ociRef,
      'sh',
      '-c',
      'trap "echo bye; exit 0" TERM; echo started; while :; do busybox sleep 1; done',
    ]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/^[0-9a-f]{64}\n$/);
    expect((await stevedore(['ps'])).stdout).toMatch(/\s+Up\s+bg\n/);
    // Its SIGTERM trap is set once it has said so.
    for (let i = 0; i < 100 && !(await stevedore(['logs', 'bg'])).stdout.includes('started'); i++) await new Promise((r) => setTimeout(r, 100));
    const stop = await stevedore(['stop', '-t', '10', 'bg']);
    expect(stop.stdout, stop.stderr).toBe('bg\n');
    const ps = await stevedore(['ps', '-a']);
    expect(ps.stdout).toMatch(/Exited \(0\)\s+bg\n/);
    expect((await stevedore(['logs', '-f', 'bg'])).stdout).toBe('started\nbye\n');
    expect((await stevedore(['rm', 'bg'])).code).toBe(0);

    const k = await stevedore(['run', '-d', '--name', 'bgk', image.ociRef, 'busybox', 'sleep', '60']);
    expect(k.code).toBe(0);
    expect((await stevedore(['kill', 'bgk'])).code).toBe(0);
    for (let i = 0; i < 100 && !/Exited/.test((await stevedore(['ps', '-a'])).stdout); i++) await new Promise((r) => setTimeout(r, 100));
    expect((await stevedore(['ps', '-a'])).stdout).toMatch(/Exited \(137\)\s+bgk\n/);
    expect((await stevedore(['rm', 'bgk'])).code).toBe(0);

    const missing = await stevedore(['run', '-d', '--name', 'bgfail', image.ociRef, 'nosuchcommand']);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toMatch(/executable file not found/);
    // Like podman, the container that failed to start is kept (exited) until removed.
    expect((await stevedore(['ps', '-a'])).stdout).toMatch(/Exited \(127\)\s+bgfail\n/);
    expect((await stevedore(['rm', 'bgfail'])).code).toBe(0);
  });

  it('lists pulled images with `images`', async () => {
    const r = await stevedore(['images']);
    expect(r.stdout).toMatch(/^REPOSITORY\s+TAG\s+DIGEST\n/);
    expect(r.stdout).toMatch(/localhost\/layout\s+bb\s+[0-9a-f]{12}/);
  });
});

describe('rmi and prune (CLI)', () => {
  it('refuses to remove an image a container uses, then untags it and prune reclaims everything', async () => {
    expect((await stevedore(['run', '--name', 'gcuser', image.ociRef, 'true'])).code).toBe(0);
    const refused = await stevedore(['rmi', 'localhost/layout:bb']);
    expect(refused.code).toBe(125);
    expect(refused.stderr).toMatch(/in use by container\(s\) gcuser/);
    // While the container exists, prune keeps its snapshot even though the image goes.
    expect((await stevedore(['rmi', '--force', 'localhost/layout:bb'])).stdout).toBe('Untagged: localhost/layout:bb\n');
    const kept = await stevedore(['prune', '--grace', '0']);
    expect(kept.stdout).toMatch(/Removed [1-9]\d* blobs, 0 snapshots/);
    expect((await stevedore(['rm', 'gcuser'])).code).toBe(0);
    const pruned = await stevedore(['prune', '--grace', '0']);
    expect(pruned.stdout).toMatch(/Removed 0 blobs, 1 snapshots, 0 unpack leftovers; [1-9]\d* bytes reclaimed/);
    expect((await stevedore(['images', '-q'])).stdout).toBe('');
    expect((await readdir(join(storeRoot, 'snapshots'))).filter((n) => !n.startsWith('empty'))).toEqual([]);
    expect((await readdir(join(storeRoot, 'images', 'blobs', 'sha256'))).filter((n) => !n.startsWith('.'))).toEqual([]);
    expect((await stevedore(['rmi', 'localhost/layout:bb'])).code).toBe(125);
  });
});

describe('stevedore run from a registry', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('pulls by reference through the copy engine, then runs from the store with --pull never', async () => {
    const ref = `${registry.host}/test/busybox:1`;
    const pushed = await skopeo(['copy', '--dest-tls-verify=false', image.ociRef, `docker://${ref}`]);
    expect(pushed.code, pushed.stderr).toBe(0);
    const first = await stevedore(['run', '--rm', ref, 'echo', 'pulled']);
    expect(first.stdout).toBe('pulled\n');
    expect(first.code).toBe(0);
    const again = await stevedore(['run', '--rm', '--pull', 'never', ref, 'echo', 'cached']);
    expect(again.stdout).toBe('cached\n');
    expect((await stevedore(['images'])).stdout).toContain(`${registry.host}/test/busybox`);
  });
});

describe('same behaviour as podman run', () => {
  const tag = `localhost/stevedore-cmp:${randomBytes(6).toString('hex')}`;
  beforeAll(async () => {
    const loaded = await skopeo(['copy', image.ociRef, `containers-storage:${tag}`]);
    if (loaded.code !== 0) throw new Error(`loading the image into podman's storage failed: ${loaded.stderr}`);
  });
  afterAll(async () => {
    await runCommand('podman', ['rmi', '-f', tag], { timeoutMs: 60_000 }).catch(() => undefined);
  });

  // Podman's own defaults ask for rlimits above this host's hard limits; give it ones it can set.
  const podman = (flags: string[], args: string[]): Promise<Outcome> =>
    spawnOutcome('podman', [
      '--runtime',
      'runc',
      '--cgroup-manager=cgroupfs',
      '--events-backend=file',
      'run',
      '--rm',
      '--ulimit',
      'nofile=1024:1024',
      '--ulimit',
      'nproc=1024:1024',
      '--network',
      'none',
      ...flags,
      tag,
      ...args,
    ]);

  const cases: { name: string; flags: string[]; args: string[]; compareStderr?: boolean }[] = [
    { name: 'echo', flags: [], args: ['echo', 'hello world'] },
    { name: 'image CMD', flags: [], args: [] },
    { name: 'exit code', flags: [], args: ['sh', '-c', 'exit 3'] },
    { name: 'signalled child (128+15)', flags: [], args: ['sh', '-c', 'sh -c "kill -TERM \\$\\$"; exit $?'] },
    { name: 'PID 1 ignores its own SIGTERM', flags: [], args: ['sh', '-c', 'kill -TERM $$; echo survived'] },
    { name: '--entrypoint with args', flags: ['--entrypoint', '/bin/echo'], args: ['a', 'b'] },
    { name: '--entrypoint JSON array', flags: ['--entrypoint', '["/bin/sh","-c"]'], args: ['echo $0 $1', 'x', 'y'] },
    { name: 'env override and add', flags: ['-e', 'PATH=/bin', '-e', 'FOO=bar'], args: ['sh', '-c', 'echo $PATH $FOO'] },
    { name: 'workdir', flags: ['-w', '/etc'], args: ['sh', '-c', 'pwd'] },
    { name: 'missing -w workdir is refused', flags: ['-w', '/new/dir'], args: ['sh', '-c', 'pwd'] },
    { name: 'user by name', flags: ['-u', 'nobody'], args: ['sh', '-c', 'id -u; id -g; echo $HOME'] },
    { name: 'user by number', flags: ['-u', '1234'], args: ['sh', '-c', 'id -u; id -g; echo $HOME'] },
    { name: 'user:group', flags: ['-u', 'nobody:root'], args: ['sh', '-c', 'id -u; id -g'] },
    { name: 'unknown user', flags: ['-u', 'nosuchuser'], args: ['true'] },
    { name: 'read-only rootfs', flags: ['--read-only'], args: ['sh', '-c', 'echo x > /f; echo rc=$?'] },
    { name: 'writable rootfs', flags: [], args: ['sh', '-c', 'echo x > /f && cat /f'] },
    { name: 'command not found', flags: [], args: ['nosuchcommand'] },
    { name: 'not executable', flags: [], args: ['/etc/passwd'] },
    { name: 'capabilities of root', flags: [], args: ['sh', '-c', 'grep -E "Cap(Eff|Bnd)" /proc/self/status'] },
    { name: 'capabilities of nobody', flags: ['-u', 'nobody'], args: ['sh', '-c', 'grep -E "Cap(Eff|Prm)" /proc/self/status'] },
    { name: 'masked and read-only paths', flags: [], args: ['sh', '-c', 'cat /proc/kcore | wc -c; echo 1 > /proc/sys/vm/drop_caches; echo rc=$?'] },
    { name: 'network none: only loopback, up', flags: [], args: ['sh', '-c', 'busybox ip -o link | cut -d" " -f2,3'] },
    { name: 'stdout and stderr kept apart', flags: [], args: ['sh', '-c', 'echo to-out; echo to-err >&2'] },
    { name: 'default mounts', flags: [], args: ['sh', '-c', "grep -E ' /(proc|dev|dev/pts|dev/shm|dev/mqueue|sys) ' /proc/mounts | cut -d' ' -f2,3 | sort"] },
  ];

  for (const c of cases) {
    it(`${c.name}: same stdout and exit status`, async () => {
      const [ours, theirs] = await Promise.all([stevedore(['run', '--rm', '--network', 'none', ...c.flags, image.ociRef, ...c.args]), podman(c.flags, c.args)]);
      expect({ code: ours.code, stdout: ours.stdout }).toEqual({ code: theirs.code, stdout: theirs.stdout });
    });
  }
});
