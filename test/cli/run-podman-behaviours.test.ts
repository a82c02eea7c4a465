/**
 * `stevedore run` beside `podman run` (4.3, runc, cgroupfs, a private vfs storage) on the same
 * busybox image and arguments: the run behaviours of issue 18 that used to differ (user entries,
 * supplementary groups, -w at a volume, a missing -v source, --read-only tmpfs, the container
 * environment, the hostname with the host network) and the flags scripts written for podman use
 * (--cap-add/--cap-drop, --ulimit, --tls-verify).
 */
import { chown, mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBusyboxImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { runCommand, type CommandResult } from '../../hack/lib/harness/procs.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { skopeo } from '../harness/skopeo.js';
import { REPO_ROOT, ensureBuilt, stevedore } from './stevedore.js';

let dir: string;
let image: FixtureImage;
let podmanImage: string;

// Podman's own default rlimits are above this host's hard limits: both get the same explicit ones.
const LIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];

const podmanGlobal = (): string[] => [
  '--root',
  join(dir, 'podman-root'),
  '--runroot',
  join(dir, 'podman-run'),
  '--storage-driver',
  'vfs',
  '--events-backend=file',
  '--runtime',
  'runc',
  '--cgroup-manager=cgroupfs',
];
const ours = (flags: string[], args: string[]): Promise<CommandResult> =>
  stevedore(['run', '--root', join(dir, 'store'), '--rm', '--network', 'none', ...LIMITS, ...flags, image.ociRef, ...args], { timeoutMs: 90_000 });
const theirs = (flags: string[], args: string[]): Promise<CommandResult> =>
  runCommand('podman', [...podmanGlobal(), 'run', '--rm', '--network', 'none', ...LIMITS, ...flags, podmanImage, ...args], { timeoutMs: 90_000 });
const both = (flags: string[], args: string[]): Promise<[CommandResult, CommandResult]> => Promise.all([ours(flags, args), theirs(flags, args)]);
const outcome = (r: CommandResult): { code: number | null; stdout: string } => ({ code: r.code, stdout: r.stdout });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stevedore-run-podman-'));
  image = await makeBusyboxImage(join(dir, 'layout'), 'bb');
  podmanImage = 'localhost/stevedore-run-cmp:1';
  const loaded = await skopeo(['copy', image.ociRef, `containers-storage:[vfs@${join(dir, 'podman-root')}+${join(dir, 'podman-run')}]${podmanImage}`]);
  expect(loaded.code, loaded.stderr).toBe(0);
  await mkdir(join(dir, 'vol'));
}, 180_000);

afterAll(async () => {
  await runCommand('podman', [...podmanGlobal(), 'rmi', '-af'], { timeoutMs: 60_000 }).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

describe('run behaves as podman run', () => {
  it.each([
    ['a numeric user gets a passwd and a group entry', ['-u', '1234'], 'whoami; id; echo $HOME; grep 1234 /etc/passwd /etc/group'],
    ['uid:gid without entries', ['-u', '1234:5678'], 'whoami; id; grep -E "1234|5678" /etc/passwd /etc/group'],
    ["the passwd entry's home is the working directory", ['-u', '1234', '-w', '/tmp'], 'grep 1234 /etc/passwd; echo $HOME'],
    ['uid 0 with a new gid', ['-u', '0:5678'], 'id; grep 5678 /etc/group'],
  ])('%s', async (_name, flags, script) => {
    const [a, b] = await both(flags, ['sh', '-c', script]);
    expect(outcome(a), a.stderr).toEqual(outcome(b));
    expect(a.code).toBe(0);
  });

  it.each([
    ['no user', []],
    ['-u 0', ['-u', '0']],
    ['-u nobody', ['-u', 'nobody']],
    ['-u nobody:root', ['-u', 'nobody:root']],
    ['-u 1234', ['-u', '1234']],
  ])('supplementary groups: %s', async (_name, flags) => {
    const [a, b] = await both(flags, ['sh', '-c', 'id; grep Groups /proc/self/status']);
    expect(outcome(a), a.stderr).toEqual(outcome(b));
  });

  it('-w at a volume mount point', async () => {
    const [a, b] = await both(['-v', `${join(dir, 'vol')}:/data`, '-w', '/data'], ['sh', '-c', 'pwd; echo x > f && cat f']);
    expect(outcome(a), a.stderr).toEqual(outcome(b));
    expect(a.stdout).toBe('/data\nx\n');
  });

  it('-v with a missing host path exits 125 naming the path', async () => {
    const missing = join(dir, 'no-such-dir');
    const [a, b] = await both(['-v', `${missing}:/data`], ['true']);
    expect([a.code, b.code]).toEqual([125, 125]);
    expect(a.stderr).toContain(missing);
    expect(a.stderr).toMatch(/does not exist/);
  });

  it('--read-only mounts writable tmpfs on /tmp, /run and /var/tmp', async () => {
    const script =
      'grep -E " /(tmp|run|var/tmp) " /proc/mounts | cut -d" " -f1-4 | sort; echo x > /tmp/a && echo x > /run/a && echo x > /var/tmp/a && echo writable; echo x > /f || echo root-ro';
    const [a, b] = await both(['--read-only'], ['sh', '-c', script]);
    expect(outcome(a), a.stderr).toEqual(outcome(b));
    expect(a.stdout).toContain('writable\nroot-ro\n');
  });

  it('--read-only-tmpfs=false leaves them out', async () => {
    const [a, b] = await both(
      ['--read-only', '--read-only-tmpfs=false'],
      ['sh', '-c', 'grep -cE " /(tmp|run|var/tmp) " /proc/mounts; echo x > /tmp/a || echo ro'],
    );
    expect(outcome(a), a.stderr).toEqual(outcome(b));
    expect(a.stdout).toBe('0\nro\n');
  });

  it('sets TERM=xterm and a container variable (ours: stevedore, podman: podman) and an empty /run/.containerenv', async () => {
    const script = 'echo "TERM=$TERM container=$container"; wc -c < /run/.containerenv';
    const [a, b] = await both([], ['sh', '-c', script]);
    expect(a.stdout).toBe('TERM=xterm container=stevedore\n0\n');
    expect(b.stdout).toBe('TERM=xterm container=podman\n0\n');
    // -e overrides both, as with podman
    const [c, d] = await both(['-e', 'TERM=vt100', '-e', 'container=other'], ['sh', '-c', script]);
    expect(outcome(c)).toEqual(outcome(d));
  });

  it("--network host: the hostname is the host's", async () => {
    const [a, b] = await Promise.all([
      stevedore(['run', '--root', join(dir, 'store'), '--rm', '--network', 'host', ...LIMITS, image.ociRef, 'sh', '-c', 'hostname; echo $HOSTNAME'], {
        timeoutMs: 90_000,
      }),
      runCommand('podman', [...podmanGlobal(), 'run', '--rm', '--network', 'host', ...LIMITS, podmanImage, 'sh', '-c', 'hostname; echo $HOSTNAME'], {
        timeoutMs: 90_000,
      }),
    ]);
    expect(outcome(a), a.stderr).toEqual(outcome(b));
    expect(a.stdout).toBe(`${hostname()}\n${hostname()}\n`);
  });
});

describe('podman flags', () => {
  it.each([
    ['--cap-add and --cap-drop for root', ['--cap-add', 'net_admin', '--cap-drop', 'CAP_CHOWN']],
    ['--cap-add for another user', ['-u', 'nobody', '--cap-add', 'NET_ADMIN']],
    ['--cap-drop all', ['--cap-drop', 'all']],
    ['--cap-drop all --cap-add one', ['--cap-drop', 'ALL', '--cap-add', 'kill']],
    ['--cap-add all', ['--cap-add', 'all']],
  ])('%s: the same capability sets', async (_name, flags) => {
    const [a, b] = await both(flags, ['grep', 'Cap', '/proc/self/status']);
    expect(outcome(a), a.stderr).toEqual(outcome(b));
  });

  it('--cap-add of an unknown capability exits 125 naming it', async () => {
    const [a, b] = await both(['--cap-add', 'nosuch'], ['true']);
    expect([a.code, b.code]).toEqual([125, 125]);
    expect(a.stderr).toContain('CAP_NOSUCH');
  });

  it('--ulimit sets soft and hard limits; a bad one exits 125', async () => {
    const [a, b] = await both(['--ulimit', 'nofile=100:200', '--ulimit', 'stack=8192000'], ['sh', '-c', 'ulimit -n; ulimit -Hn; ulimit -s']);
    expect(outcome(a), a.stderr).toEqual(outcome(b));
    expect(a.stdout).toBe('100\n200\n8000\n');
    const [c, d] = await both(['--ulimit', 'bogus=1'], ['true']);
    expect([c.code, d.code]).toEqual([125, 125]);
    expect(c.stderr).toContain('bogus');
  });

  it('--ulimit -1 is unlimited (RLIM_INFINITY), soft and/or hard; unlimited over a finite hard exits 125', async () => {
    const show = ['sh', '-c', 'ulimit -c; ulimit -Hc; ulimit -s; ulimit -Hs; grep -E "core|stack" /proc/self/limits'];
    const [a, b] = await both(['--ulimit', 'core=-1', '--ulimit', 'stack=8192000:-1'], show);
    expect(outcome(a), a.stderr).toEqual(outcome(b));
    expect(a.stdout).toMatch(/^unlimited\nunlimited\n8000\nunlimited\n/);
    expect(a.stdout).toMatch(/Max stack size +8192000 +unlimited +bytes/);
    expect(a.stdout).toMatch(/Max core file size +unlimited +unlimited +bytes/);
    // `unlimited` as a word: podman 4.3 refuses it (newer podman and docker take it); the same limits as -1.
    const c = await ours(['--ulimit', 'core=unlimited', '--ulimit', 'stack=8192000:unlimited'], show);
    expect(outcome(c), c.stderr).toEqual(outcome(a));
    const [d, e] = await both(['--ulimit', 'core=-1:100'], ['true']);
    expect([d.code, e.code]).toEqual([125, 125]);
    expect(d.stderr).toContain('--ulimit core=-1:100: the soft limit (unlimited) exceeds the hard limit (100)');
    // The kernel caps open files at fs.nr_open: runc cannot set nofile unlimited, for podman neither.
    const [f, g] = await both(['--ulimit', 'nofile=-1'], ['true']);
    expect([f.code === 0, g.code === 0]).toEqual([false, false]);
    expect(f.stderr).toMatch(/error setting rlimit type 7: operation not permitted/);
  });
});

describe('run --tls-verify', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ name: 'run-tls-verify' });
    const pushed = await skopeo(['copy', '--dest-tls-verify=false', image.ociRef, `docker://${reg.host}/run/bb:1`]);
    expect(pushed.code, pushed.stderr).toBe(0);
  }, 120_000);
  afterAll(async () => {
    await reg?.stop();
  });

  it('--tls-verify=true refuses plain HTTP; --tls-verify=false pulls over it', async () => {
    const run = (flag: string) =>
      stevedore(['run', '--root', join(dir, 'tls-store'), '--rm', flag, `${reg.host}/run/bb:1`, 'echo', 'ran'], { timeoutMs: 90_000 });
    const strict = await run('--tls-verify=true');
    expect(strict.code).toBe(125);
    expect(strict.stdout).toBe('');
    const relaxed = await run('--tls-verify=false');
    expect([relaxed.code, relaxed.stdout], relaxed.stderr).toEqual([0, 'ran\n']);
  });
});

describe('rootless (the engine as root of a user namespace over an unprivileged range)', () => {
  // userns-helper.py makes what `unshare --user --map-root-user --map-auto` gives a user with a subuid range.
  const BASE = 430000;
  const HELPER = join(REPO_ROOT, 'test', 'runtime', 'userns-helper.py');
  let home: string;
  const chownTree = async (path: string): Promise<void> => {
    await chown(path, BASE, BASE);
    if (!(await stat(path)).isDirectory()) return;
    for (const name of await readdir(path)) await chownTree(join(path, name));
  };
  const rootless = (flags: string[], script: string): Promise<CommandResult> =>
    runCommand(
      'python3',
      [
        HELPER,
        String(BASE),
        '65536',
        process.execPath,
        join(REPO_ROOT, 'bin', 'stevedore.js'),
        'run',
        '--root',
        join(home, 'store'),
        '--rm',
        '--network',
        'none',
        ...flags,
        `oci:${join(home, 'layout')}:bb`,
        'sh',
        '-c',
        script,
      ],
      {
        env: { ...process.env, HOME: home },
        timeoutMs: 90_000,
      },
    );
  beforeAll(async () => {
    await ensureBuilt();
    home = await mkdtemp(join(tmpdir(), 'stevedore-run-rootless-'));
    await mkdir(join(home, 'vol'));
    await makeBusyboxImage(join(home, 'layout'), 'bb');
    await chownTree(home);
  }, 120_000);
  afterAll(async () => {
    await rm(home, { recursive: true, force: true });
  });

  it('user entries, groups, the container environment, -w at a volume, --read-only tmpfs', async () => {
    const a = await rootless(
      ['-u', '1234:5678', '-v', `${join(home, 'vol')}:/data`, '-w', '/data'],
      'whoami; id; echo $container $TERM; wc -c < /run/.containerenv; pwd',
    );
    expect([a.code, a.stdout], a.stderr).toEqual([0, '1234\nuid=1234(1234) gid=5678(5678) groups=5678(5678)\nstevedore xterm\n0\n/data\n']);
    const b = await rootless(['--read-only'], 'echo x > /tmp/a && echo x > /run/a && echo x > /var/tmp/a && echo writable; echo x > /f || echo root-ro');
    expect([b.code, b.stdout], b.stderr).toEqual([0, 'writable\nroot-ro\n']);
  });
});
