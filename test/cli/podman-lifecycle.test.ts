/**
 * The container lifecycle verbs (`stop`, `rm`, `run --timeout`, `run --rm -d`, `logs`) beside podman
 * 4.3's on the same busybox image and arguments: podman on a private vfs storage (nothing of the
 * machine's is touched), runc and cgroupfs, with rlimits this host can set.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBusyboxImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { runCommand } from '../../hack/lib/harness/procs.js';
import { sleep } from '../../hack/lib/harness/net.js';
import { skopeo } from '../harness/skopeo.js';
import { stevedore } from './stevedore.js';

let dir: string;
let image: FixtureImage;
const tag = `localhost/stevedore-lifecycle:${randomBytes(6).toString('hex')}`;

const store = () => join(dir, 'store');
const ours = (args: string[], timeoutMs = 60_000) => stevedore([...args.slice(0, 1), '--root', store(), ...args.slice(1)], { timeoutMs });
const podmanGlobal = () => [
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
const podman = (args: string[]) => runCommand('podman', [...podmanGlobal(), ...args], { timeoutMs: 120_000 });
/** podman run's flags every case needs here (rlimits the host allows, no network). */
const PODMAN_RUN = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--network', 'none'];

async function until(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stevedore-lifecycle-'));
  image = await makeBusyboxImage(join(dir, 'layout'), 'bb');
  const loaded = await skopeo(['copy', image.ociRef, `containers-storage:[vfs@${join(dir, 'podman-root')}+${join(dir, 'podman-run')}]${tag}`]);
  expect(loaded.code, loaded.stderr).toBe(0);
  // Pulled into our store once, so the timed cases time the run, not the pull.
  const pulled = await ours(['run', '--rm', image.ociRef, 'true']);
  expect(pulled.code, pulled.stderr).toBe(0);
}, 180_000);

afterAll(async () => {
  await podman(['rm', '-a', '-f', '-t', '0']).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
}, 120_000);

// PID 1 traps SIGTERM (and ends 1 s later); a child shell traps it too and would say so.
const TWO_TRAPS = [
  'sh',
  '-c',
  'busybox sh -c \'trap "echo child-term; exit 0" TERM; while :; do busybox sleep 0.2; done\' & trap "busybox sleep 1; echo pid1-term; exit 0" TERM; echo ready; while :; do busybox sleep 0.2; done',
];

describe('container lifecycle verbs, as podman', () => {
  it('stop sends the stop signal to PID 1 only, not to every process of the container', async () => {
    const d = await ours(['run', '-d', '--name', 'traps', image.ociRef, ...TWO_TRAPS]);
    expect(d.code, d.stderr).toBe(0);
    const p = await podman(['run', '-d', ...PODMAN_RUN, '--name', 'traps', tag, ...TWO_TRAPS]);
    expect(p.code, p.stderr).toBe(0);
    await until(
      'both containers to be ready',
      async () => (await ours(['logs', 'traps'])).stdout.includes('ready') && (await podman(['logs', 'traps'])).stdout.includes('ready'),
    );
    const [a, b] = await Promise.all([ours(['stop', '-t', '10', 'traps']), podman(['stop', '-t', '10', 'traps'])]);
    expect([a.code, a.stdout], a.stderr).toEqual([0, 'traps\n']);
    expect([b.code, b.stdout], b.stderr).toEqual([0, 'traps\n']);
    const [la, lb] = await Promise.all([ours(['logs', 'traps']), podman(['logs', 'traps'])]);
    expect(lb.stdout).toBe('ready\npid1-term\n');
    expect(la.stdout).toBe(lb.stdout);
    expect((await ours(['ps', '-a'])).stdout).toMatch(/Exited \(0\)\s+traps\n/);
    expect((await ours(['rm', 'traps'])).code).toBe(0);
  }, 120_000);

  it('rm of a running container exits 2 and keeps it; rm of a missing one exits 1; rm -f stops and removes it, printing the name given', async () => {
    const d = await ours(['run', '-d', '--name', 'busy', image.ociRef, 'busybox', 'sleep', '60']);
    expect(d.code, d.stderr).toBe(0);
    const id = d.stdout.trim();
    const p = await podman(['run', '-d', ...PODMAN_RUN, '--name', 'busy', tag, 'busybox', 'sleep', '60']);
    expect(p.code, p.stderr).toBe(0);

    const [a, b] = await Promise.all([ours(['rm', 'busy']), podman(['rm', 'busy'])]);
    expect(b.code).toBe(2);
    expect(a.code, a.stderr).toBe(b.code);
    expect(a.stderr).toMatch(/cannot remove container busy as it is running/);
    expect((await ours(['ps'])).stdout).toMatch(/\s+Up\s+busy\n/);

    const [ma, mb] = await Promise.all([ours(['rm', 'nosuch']), podman(['rm', 'nosuch'])]);
    expect(mb.code).toBe(1);
    expect(ma.code, ma.stderr).toBe(mb.code);
    expect(ma.stderr).toMatch(/no container with name or ID "nosuch" found/);

    // By an id prefix: printed as given, as podman does.
    const [fa, fb] = await Promise.all([ours(['rm', '-f', '-t', '1', id.slice(0, 12)]), podman(['rm', '-f', '-t', '1', 'busy'])]);
    expect([fb.code, fb.stdout], fb.stderr).toEqual([0, 'busy\n']);
    expect([fa.code, fa.stdout], fa.stderr).toEqual([0, `${id.slice(0, 12)}\n`]);
    expect((await ours(['ps', '-a'])).stdout).not.toContain('busy');
    expect(existsSync(join(store(), 'containers', id))).toBe(false);
  }, 120_000);

  it("run --timeout 2 ends the container after about 2 s with podman's status (255), even when PID 1 ignores SIGTERM", async () => {
    const t0 = Date.now();
    const a = await ours(['run', '--rm', '--timeout', '2', image.ociRef, 'busybox', 'sleep', '30']);
    const ourSeconds = (Date.now() - t0) / 1000;
    const t1 = Date.now();
    const b = await podman(['run', '--rm', ...PODMAN_RUN, '--timeout', '2', tag, 'busybox', 'sleep', '30']);
    const podmanSeconds = (Date.now() - t1) / 1000;
    expect(b.code).toBe(255);
    expect(a.code, a.stderr).toBe(b.code);
    expect(podmanSeconds).toBeLessThan(8);
    expect(ourSeconds).toBeGreaterThanOrEqual(2);
    expect(ourSeconds).toBeLessThan(8);
  }, 120_000);

  it('run --rm -d runs in the background and the monitor removes the container when it exits', async () => {
    const d = await ours(['run', '--rm', '-d', '--name', 'gone', image.ociRef, 'busybox', 'sleep', '1']);
    expect(d.code, d.stderr).toBe(0);
    const id = d.stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    await until('the container to be removed', async () => !existsSync(join(store(), 'containers', id)));
    expect((await ours(['ps', '-a'])).stdout).not.toContain('gone');
  }, 60_000);

  it('logs prints a final line without a newline as the container wrote it', async () => {
    const a = await ours(['run', '--name', 'partial', image.ociRef, 'sh', '-c', 'echo first; printf last; printf err-last >&2']);
    expect(a.code, a.stderr).toBe(0);
    const p = await podman(['run', ...PODMAN_RUN, '--name', 'partial', tag, 'sh', '-c', 'echo first; printf last']);
    expect(p.code, p.stderr).toBe(0);
    const [la, lb] = await Promise.all([ours(['logs', 'partial']), podman(['logs', 'partial'])]);
    expect(lb.stdout).toBe('first\nlast');
    expect(la.stdout).toBe(lb.stdout);
    expect(la.stderr).toBe('err-last');
    expect((await ours(['rm', 'partial'])).code).toBe(0);
  }, 60_000);
});

describe('a container whose monitor died (lost)', () => {
  it('rm cleans it up as its monitor would have: the container is killed, deleted from runc and its rootfs unmounted', async () => {
    const d = await ours(['run', '-d', '--name', 'orphan', image.ociRef, 'busybox', 'sleep', '60']);
    expect(d.code, d.stderr).toBe(0);
    const id = d.stdout.trim();
    const record = JSON.parse(await readFile(join(store(), 'containers', id, 'state.json'), 'utf8')) as { monitorPid: number; stateRoot?: string };
    const runc = (args: string[]) => runCommand('runc', [...(record.stateRoot ? ['--root', record.stateRoot] : []), ...args]);
    const state = JSON.parse((await runc(['state', id])).stdout) as { pid: number; status: string };
    expect(state.status).toBe('running');
    const rootfs = join(store(), 'containers', id, 'rootfs');
    const mounted = async () => (await readFile('/proc/self/mounts', 'utf8')).split('\n').some((l) => l.split(' ')[1] === rootfs);
    const overlay = await mounted();

    process.kill(record.monitorPid, 'SIGKILL');
    await until(
      'the monitor to be gone',
      async () => !existsSync(`/proc/${record.monitorPid}`) || (await readFile(`/proc/${record.monitorPid}/stat`, 'utf8').catch(() => ' Z ')).includes(') Z'),
    );

    const r = await ours(['rm', 'orphan']);
    expect([r.code, r.stdout], r.stderr).toEqual([0, 'orphan\n']);
    expect(existsSync(join(store(), 'containers', id))).toBe(false);
    expect((await runc(['state', id])).code).not.toBe(0);
    await until(
      'the container process to be gone',
      async () => !existsSync(`/proc/${state.pid}`) || (await readFile(`/proc/${state.pid}/stat`, 'utf8').catch(() => ' Z ')).includes(') Z'),
    );
    // Only meaningful where the rootfs was an overlay mount (else a copy, nothing to unmount).
    if (overlay) expect(await mounted()).toBe(false);
  }, 60_000);
});
