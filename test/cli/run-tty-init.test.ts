/**
 * `run -i`, `-t` and `--init` beside podman 4.3's on the same busybox image. `-t` is given a real
 * terminal on stdin through python3's pty module (the way a user's shell gives one); catatonit
 * (Debian package, hack/install-deps.sh) is the init of both.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBusyboxImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { runCommand, type CommandResult } from '../../hack/lib/harness/procs.js';
import { skopeo } from '../harness/skopeo.js';
import { REPO_ROOT, ensureBuilt, stevedore } from './stevedore.js';

let dir: string;
let image: FixtureImage;
const PODMAN_IMAGE = 'localhost/stevedore-tty-cmp:1';
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
const oursArgs = (flags: string[], args: string[]): string[] => [
  'run',
  '--root',
  join(dir, 'store'),
  '--rm',
  '--network',
  'none',
  ...flags,
  image.ociRef,
  ...args,
];
const podmanArgs = (flags: string[], args: string[]): string[] => [
  ...podmanGlobal(),
  'run',
  '--rm',
  '--network',
  'none',
  ...LIMITS,
  ...flags,
  PODMAN_IMAGE,
  ...args,
];

/** Runs `cmd` with a pseudo-terminal as its stdin (stdout and stderr stay pipes). */
const WITH_PTY = [
  'import os, pty, subprocess, sys',
  'master, slave = pty.openpty()',
  'p = subprocess.run(sys.argv[1:], stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE)',
  'sys.stdout.buffer.write(p.stdout); sys.stderr.buffer.write(p.stderr); sys.exit(p.returncode)',
].join('\n');

function withPty(cmd: string, args: string[]): Promise<CommandResult> {
  return runCommand('python3', ['-c', WITH_PTY, cmd, ...args], { cwd: REPO_ROOT, timeoutMs: 90_000 });
}

/** Runs `cmd` with `input` on its stdin (a pipe). */
function withInput(cmd: string, args: string[], input: string): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout }));
    child.stdin.end(input);
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stevedore-run-tty-'));
  image = await makeBusyboxImage(join(dir, 'layout'), 'bb');
  const loaded = await skopeo(['copy', image.ociRef, `containers-storage:[vfs@${join(dir, 'podman-root')}+${join(dir, 'podman-run')}]${PODMAN_IMAGE}`]);
  expect(loaded.code, loaded.stderr).toBe(0);
  await ensureBuilt();
}, 180_000);

afterAll(async () => {
  await runCommand('podman', [...podmanGlobal(), 'rmi', '-af'], { timeoutMs: 60_000 }).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

const BIN = (): string[] => [join(REPO_ROOT, 'bin', 'stevedore.js')];

describe('run -t', () => {
  it('gives the container a terminal (stdout and stderr merged through it), TERM=xterm, the exit status', async () => {
    const script = 'test -t 0 && test -t 1 && echo is-a-tty; echo to-err >&2; tty; echo $TERM; exit 3';
    const [a, b] = await Promise.all([
      withPty(process.execPath, [...BIN(), ...oursArgs(['-t'], ['sh', '-c', script])]),
      withPty('podman', podmanArgs(['-t'], ['sh', '-c', script])),
    ]);
    // runc clears ONLCR on the terminal it attaches in the foreground: lines end in \n, podman's in \r\n.
    expect({ code: a.code, stdout: a.stdout }, a.stderr).toEqual({ code: b.code, stdout: b.stdout.replaceAll('\r\n', '\n') });
    expect(a.stdout).toBe('is-a-tty\nto-err\n/dev/pts/0\nxterm\n');
    expect(a.code).toBe(3);
  });

  it('without a terminal on stdin, runs without one and says so', async () => {
    const r = await stevedore(oursArgs(['-t'], ['sh', '-c', 'tty; exit 4']), { timeoutMs: 90_000 });
    expect(r.code).toBe(4);
    expect(r.stdout).toBe('not a tty\n');
    expect(r.stderr).toMatch(/WARN: -t: stdin is not a terminal, so the container runs without a terminal/);
  });
});

describe('run -i', () => {
  it('the container reads stdin with -i and nothing without it, as podman', async () => {
    const cases: [string[], string][] = [
      [['-i'], 'hello from stdin\n'],
      [[], ''],
    ];
    for (const [flags, expected] of cases) {
      const [a, b] = await Promise.all([
        withInput(process.execPath, [...BIN(), ...oursArgs(flags, ['sh', '-c', 'cat; echo end'])], 'hello from stdin\n'),
        withInput('podman', podmanArgs(flags, ['sh', '-c', 'cat; echo end']), 'hello from stdin\n'),
      ]);
      expect(a).toEqual(b);
      expect(a).toEqual({ code: 0, stdout: `${expected}end\n` });
    }
  });
});

describe('run --init', () => {
  it("runs catatonit as PID 1 in front of the command, which then gets SIGTERM's default action (143), as podman", async () => {
    const pid1 = await stevedore(oursArgs(['--init'], ['sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "; echo; echo $$']), { timeoutMs: 90_000 });
    expect(pid1.code, pid1.stderr).toBe(0);
    expect(pid1.stdout).toMatch(/^\/run\/stevedore-init -- sh -c .*\n[2-9]\d*\n$/);
    const script = 'kill -TERM $$; echo survived';
    const [a, b] = await Promise.all([
      stevedore(oursArgs(['--init'], ['sh', '-c', script]), { timeoutMs: 90_000 }),
      runCommand('podman', podmanArgs(['--init'], ['sh', '-c', script]), { timeoutMs: 90_000 }),
    ]);
    expect({ code: a.code, stdout: a.stdout }, a.stderr).toEqual({ code: b.code, stdout: b.stdout });
    expect(a.code).toBe(143);
    // Without --init the shell is PID 1 and ignores it.
    const plain = await stevedore(oursArgs([], ['sh', '-c', script]), { timeoutMs: 90_000 });
    expect([plain.code, plain.stdout]).toEqual([0, 'survived\n']);
  });

  it('ps shows the command, not the init in front of it', async () => {
    const name = 'with-init';
    const r = await stevedore(['run', '--root', join(dir, 'store'), '--name', name, '--init', image.ociRef, 'sh', '-c', 'exit 0'], { timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    const ps = await stevedore(['ps', '-a', '--root', join(dir, 'store')]);
    expect(ps.stdout).toMatch(new RegExp(`localhost/layout:bb\\s+sh -c exit 0\\s+Exited \\(0\\).*${name}`));
    expect(ps.stdout).not.toContain('stevedore-init');
    expect((await stevedore(['rm', '--root', join(dir, 'store'), name])).code).toBe(0);
  });

  it('--init-path naming no executable exits 125 naming it', async () => {
    const r = await stevedore(oursArgs(['--init-path', join(dir, 'no-init')], ['true']), { timeoutMs: 90_000 });
    expect(r.code).toBe(125);
    expect(r.stderr).toContain(`--init-path ${join(dir, 'no-init')}: not an executable file`);
  });
});
