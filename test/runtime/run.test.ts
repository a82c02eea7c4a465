import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainerStartError, runContainer, type RunOptions, type RunResult } from '../../src/runtime/container.js';
import { parseK8sLog } from '../../src/runtime/logs.js';
import { ImageStore } from '../../src/runtime/store/index.js';
import { OciReference } from '../../src/transports/oci.js';
import { copyReference } from '../../src/copy/copy.js';
import { makeBusyboxImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { runtimeConfigErrors } from './runtime-schema.js';

let dir: string;
let image: FixtureImage;
let store: ImageStore;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stevedore-run-'));
  image = await makeBusyboxImage(join(dir, 'layout'), 'bb');
  store = await ImageStore.open(join(dir, 'store'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Captured extends RunResult {
  stdout: string;
  stderr: string;
}

async function run(args: string[], opts: Partial<RunOptions> = {}): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const r = await runContainer(store, {
    image: image.ociRef,
    args,
    remove: true,
    stdout: (c) => (stdout += c.toString()),
    stderr: (c) => (stderr += c.toString()),
    ...opts,
  });
  return { ...r, stdout, stderr };
}

describe('runContainer with runc on the busybox image', () => {
  it('streams stdout and exits 0', async () => {
    const r = await run(['echo', 'hello from the container']);
    expect(r.stdout).toBe('hello from the container\n');
    expect(r.exitCode).toBe(0);
    expect(r.reason).toBe('Completed');
    expect(r.rootfsMode).toBe('overlay');
  });

  it('returns the container exit code (exit 3 -> 3) and streams stderr separately', async () => {
    const r = await run(['sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect(r.exitCode).toBe(3);
    expect(r.reason).toBe('Error');
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('err\n');
  });

  it('reports a child killed by SIGTERM as 143 (128+15)', async () => {
    const r = await run(['sh', '-c', 'sh -c "kill -TERM \\$\\$"; exit $?']);
    expect(r.exitCode).toBe(143);
  });

  it('uses the image Cmd when no args are given, and args replace it', async () => {
    // Cmd is /bin/sh with stdin at /dev/null: it reads EOF and exits 0.
    expect((await run([])).exitCode).toBe(0);
    expect((await run(['echo', 'replaced'])).stdout).toBe('replaced\n');
  });

  it('--entrypoint replaces the entrypoint and clears Cmd; args follow it', async () => {
    const r = await run(['-c', 'echo via entrypoint'], { entrypoint: '/bin/sh' });
    expect(r.stdout).toBe('via entrypoint\n');
  });

  it('merges env: image PATH kept, -e overrides and adds, HOME from passwd', async () => {
    const r = await run(['sh', '-c', 'echo "$PATH|$FOO|$HOME|$HOSTNAME"'], { env: ['FOO=bar baz'], hostname: 'box1' });
    expect(r.stdout).toBe('/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|bar baz|/root|box1\n');
    const o = await run(['sh', '-c', 'echo $PATH'], { env: ['PATH=/bin'] });
    expect(o.stdout).toBe('/bin\n');
  });

  it('starts in the working directory; a missing explicit one is refused', async () => {
    expect((await run(['sh', '-c', 'pwd'], { workdir: '/etc' })).stdout).toBe('/etc\n');
    await expect(run(['sh', '-c', 'pwd'], { workdir: '/work/deep' })).rejects.toThrow(/workdir "\/work\/deep" does not exist/);
  });

  it('runs as a user given by name or by number, with the group from passwd or given', async () => {
    expect((await run(['sh', '-c', 'echo $(id -u):$(id -g)'], { user: 'nobody' })).stdout).toBe('65534:65534\n');
    expect((await run(['sh', '-c', 'echo $(id -u):$(id -g)'], { user: '1234' })).stdout).toBe('1234:0\n');
    expect((await run(['sh', '-c', 'echo $(id -u):$(id -g)'], { user: 'nobody:root' })).stdout).toBe('65534:0\n');
    expect((await run(['sh', '-c', 'echo $(id -u):$(id -g)'], { user: '42:43' })).stdout).toBe('42:43\n');
    await expect(run(['true'], { user: 'nosuchuser' })).rejects.toThrow(/unable to find user nosuchuser/);
  });

  it('gives a non-root user no capabilities and root the default set', async () => {
    const root = await run(['sh', '-c', 'grep CapEff /proc/self/status']);
    expect(root.stdout).toMatch(/CapEff:\s+00000000800405fb/);
    const nobody = await run(['sh', '-c', 'grep CapEff /proc/self/status'], { user: 'nobody' });
    expect(nobody.stdout).toMatch(/CapEff:\s+0000000000000000/);
  });

  it("sets no_new_privs (unlike Podman's default)", async () => {
    expect((await run(['sh', '-c', 'grep NoNewPrivs /proc/self/status'])).stdout).toMatch(/NoNewPrivs:\s+1/);
  });

  it('read-only rootfs: writes fail; without it they succeed', async () => {
    const r = await run(['sh', '-c', 'echo x > /newfile && echo wrote'], { readOnly: true });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/Read-only file system/);
    expect((await run(['sh', '-c', 'echo x > /newfile && cat /newfile'])).stdout).toBe('x\n');
  });

  it('bind-mounts a host directory read-only or read-write', async () => {
    const host = await mkdtemp(join(dir, 'vol-'));
    await writeFile(join(host, 'in.txt'), 'from host\n');
    const r = await run(['sh', '-c', 'cat /data/in.txt; echo back > /data/out.txt'], { binds: [{ source: host, destination: '/data' }] });
    expect(r.stdout).toBe('from host\n');
    expect(await readFile(join(host, 'out.txt'), 'utf8')).toBe('back\n');
    const ro = await run(['sh', '-c', 'echo no > /data/ro.txt'], { binds: [{ source: host, destination: '/data', readonly: true }] });
    expect(ro.exitCode).not.toBe(0);
  });

  it('--tmpfs mounts a tmpfs, writable even on a read-only rootfs', async () => {
    const r = await run(['sh', '-c', 'echo x > /scratch/f && cat /scratch/f && grep " /scratch " /proc/mounts | cut -d" " -f3,4'], {
      readOnly: true,
      tmpfs: ['/scratch:size=1m'],
    });
    expect(r.stdout).toMatch(/^x\ntmpfs rw,nosuid,nodev,noexec,.*size=1024k/);
  });

  it('applies the default seccomp profile (unshare and mount are refused)', async () => {
    const r = await run(['sh', '-c', 'busybox unshare -m true; echo rc=$?']);
    expect(r.stdout).toMatch(/rc=[1-9]/);
  });

  it("caps rlimits at the caller's hard limits", async () => {
    const r = await run(['sh', '-c', 'ulimit -Hn']);
    const hard = Number(/Max open files\s+\d+\s+(\d+)/.exec(await readFile('/proc/self/limits', 'utf8'))![1]);
    expect(Number(r.stdout.trim())).toBe(Math.min(hard, 1_048_576));
  });

  it('network none gives a private network namespace; host shares the host one', async () => {
    const own = (await readFile('/proc/self/net/dev', 'utf8')).split('\n').length;
    const none = await run(['cat', '/proc/net/dev']);
    expect(none.stdout.split('\n').length).toBeLessThanOrEqual(own);
    expect(none.stdout).toMatch(/lo:/);
    const host = await run(['cat', '/proc/net/dev'], { network: 'host' });
    expect(host.stdout.split('\n').length).toBe(own);
  });

  it('--timeout stops the container: SIGTERM, grace, SIGKILL; reason DeadlineExceeded', async () => {
    const started = Date.now();
    const r = await run(['busybox', 'sleep', '30'], { timeoutSeconds: 1, stopGraceSeconds: 1 });
    expect(r.reason).toBe('DeadlineExceeded');
    // PID 1 ignores SIGTERM without a handler, so SIGKILL ends it: 128+9.
    expect(r.exitCode).toBe(137);
    expect(Date.now() - started).toBeLessThan(15_000);
    const trapped = await run(['sh', '-c', 'trap "echo got TERM; exit 7" TERM; busybox sleep 30 & wait'], { timeoutSeconds: 1, stopGraceSeconds: 5 });
    expect(trapped.reason).toBe('DeadlineExceeded');
    expect(trapped.stdout).toBe('got TERM\n');
    expect(trapped.exitCode).toBe(7);
  });

  it('a missing command is 127, a non-executable one 126', async () => {
    const missing = await run(['nosuchcommand']).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ContainerStartError);
    expect((missing as ContainerStartError).exitCode).toBe(127);
    const notExec = await run(['/etc/passwd']).catch((e: unknown) => e);
    expect((notExec as ContainerStartError).exitCode).toBe(126);
  });

  it('writes a k8s-file log, keeps the bundle without --rm, and its config.json passes the runtime schema', async () => {
    const r = await run(['sh', '-c', 'echo one; echo two >&2; printf tail'], { remove: false, memory: 64 * 1024 * 1024, pidsLimit: 50, cpus: 0.5 });
    const records = parseK8sLog(await readFile(r.logPath, 'utf8'));
    expect(records.map((x) => [x.stream, x.tag, x.text])).toEqual(
      expect.arrayContaining([
        ['stdout', 'F', 'one'],
        ['stderr', 'F', 'two'],
        ['stdout', 'P', 'tail'],
      ]),
    );
    for (const rec of records) expect(rec.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    const config = JSON.parse(await readFile(join(r.bundle, 'config.json'), 'utf8'));
    expect(runtimeConfigErrors(config)).toEqual([]);
    expect(config.linux.resources.memory.limit).toBe(64 * 1024 * 1024);
    expect(config.linux.resources.pids.limit).toBe(50);
    const state = JSON.parse(await readFile(join(r.bundle, 'state.json'), 'utf8'));
    expect(state.exitCode).toBe(0);
    await rm(r.bundle, { recursive: true, force: true });
  });

  it('enforces --pids-limit and --memory through cgroups', async () => {
    const r = await run(['sh', '-c', 'cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max'], { pidsLimit: 17 });
    expect(r.stdout.trim()).toBe('17');
  });

  it("reports OOMKilled (exit 137) when the memory limit is hit, from the runtime's events", async () => {
    const r = await run(['sh', '-c', 'busybox sleep 1; x=aaaaaaaa; while :; do x=$x$x; done'], { memory: 32 * 1024 * 1024 });
    expect(r.exitCode).toBe(137);
    expect(r.reason).toBe('OOMKilled');
    const fine = await run(['echo', 'fine'], { memory: 32 * 1024 * 1024 });
    expect(fine.reason).toBe('Completed');
  });

  it('--rm removes the container directory; --pull never fails for an image not in the store', async () => {
    await run(['true']);
    expect(await store.containerIds()).toEqual([]);
    await expect(run(['true'], { image: 'localhost/not-here:1', pull: 'never' })).rejects.toThrow(/not in the local store/);
  });
});

describe('the store', () => {
  it('stores images under normalised names and reuses snapshots keyed by chain ID', async () => {
    const s = await ImageStore.open(join(dir, 'store2'));
    const img = await s.pull(image.ociRef);
    expect(img.name).toBe('localhost/layout:bb');
    expect(img.chainIds).toEqual(image.diffIds);
    const top = await s.snapshot(img);
    expect(top).toBe(join(s.snapshotDir(img.chainIds[0]!), 'rootfs'));
    const before = (await stat(top)).mtimeMs;
    await s.snapshot(img);
    expect((await stat(top)).mtimeMs).toBe(before);
    expect((await s.list()).map((i) => i.name)).toEqual(['localhost/layout:bb']);
    expect(await s.readSnapshotMeta(img.chainIds[0]!)).toMatchObject({ diffId: image.diffIds[0] });
  });

  it('two runs building the same snapshot at once both succeed and leave one snapshot', async () => {
    const s = await ImageStore.open(join(dir, 'store5'));
    const img = await s.pull(image.ociRef);
    const [a, b] = await Promise.all([s.snapshot(img), s.snapshot(img)]);
    expect(a).toBe(b);
    expect((await readdir(join(s.root, 'snapshots'))).sort()).toEqual([img.chainIds[0]!.slice('sha256:'.length)]);
  });

  it('an interrupted unpack leaves no snapshot that a later run uses', async () => {
    const s = await ImageStore.open(join(dir, 'store3'));
    const img = await s.pull(image.ociRef);
    const ac = new AbortController();
    ac.abort();
    await expect(s.snapshot(img, { signal: ac.signal })).rejects.toThrow();
    // Abort mid-unpack: the temp dir is removed and the final name never appears.
    const ac2 = new AbortController();
    const p = s.snapshot(img, { signal: ac2.signal });
    setImmediate(() => ac2.abort());
    await p.catch(() => undefined);
    const names = await readdir(join(s.root, 'snapshots'));
    expect(names.filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    const r = await runContainer(s, { image: image.ociRef, args: ['echo', 'ok'], remove: true, stdout: () => undefined });
    expect(r.exitCode).toBe(0);
  });

  it('pulls through the copy engine from any transport into the oci: store', async () => {
    const s = await ImageStore.open(join(dir, 'store4'));
    const other = join(dir, 'other');
    await copyReference(new OciReference(image.layoutDir, 'bb'), new OciReference(other, 'v1'));
    const img = await s.pull(`oci:${other}:v1`);
    expect(img.name).toBe('localhost/other:v1');
    expect(img.digest).toBe(image.descriptor.digest);
  });
});

describe('crun', () => {
  it('is refused with a clear error on a hybrid-cgroup host', async () => {
    const { cgroupMode } = await import('../../src/runtime/cgroups.js');
    if (cgroupMode() !== 'hybrid') return;
    await expect(run(['true'], { runtime: 'crun' })).rejects.toThrow(/crun cannot run here: .*use --runtime runc/);
  });
});
