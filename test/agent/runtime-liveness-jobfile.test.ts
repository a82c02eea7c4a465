/**
 * Two runtime fixes the node agent relies on: a zombie monitor counts as gone (else a container
 * whose monitor died unreaped would show as running for ever), and the `run -d` job file, which
 * holds env values (Secrets included) until the monitor reads it, is readable by its owner only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeJobFile } from '../../src/runtime/lifecycle/monitor.js';
import { listContainers, processAlive, writeRecord, type ContainerRecord } from '../../src/runtime/containers.js';
import { ImageStore } from '../../src/runtime/store/index.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';

const temps = new TempDirs();
const children: ChildProcess[] = [];
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await temps.cleanup();
});

const procState = async (pid: number) => {
  const s = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return s ? s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3) : 'gone';
};

/** A real zombie: a child of `sleep`, which never reaps it, that has exited. Returns its pid. */
async function makeZombie(): Promise<number> {
  const parent = spawn('sh', ['-c', 'sleep 0.05 & echo $!; exec sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(parent);
  const pid = await new Promise<number>((resolve, reject) => {
    parent.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    parent.once('error', reject);
  });
  for (let i = 0; i < 100 && (await procState(pid)) !== 'Z'; i++) await new Promise((r) => setTimeout(r, 20));
  expect(await procState(pid)).toBe('Z');
  return pid;
}

describe('processAlive', () => {
  it('is true for a running process, false for a zombie and for a pid that is gone', async () => {
    expect(processAlive(process.pid)).toBe(true);
    const zombie = await makeZombie();
    expect(processAlive(zombie)).toBe(false);
    const quick = spawn('true');
    await new Promise((r) => quick.once('exit', r));
    expect(processAlive(quick.pid!)).toBe(false);
  });

  it('lets ps report a container whose runtime forgot it and whose monitor is a zombie as exited', async () => {
    const root = await temps.make('zombie-store');
    const store = await ImageStore.open(root);
    const zombie = await makeZombie();
    const base: Omit<ContainerRecord, 'id' | 'name' | 'bundle'> = {
      image: 'i',
      imageDigest: `sha256:${'0'.repeat(64)}`,
      runtime: 'runc',
      status: 'running',
      createdAt: new Date().toISOString(),
      logPath: '/dev/null',
      command: ['true'],
    };
    const recs: ContainerRecord[] = [
      { ...base, id: 'f'.repeat(63) + '1', name: 'zombie-monitor', bundle: join(root, 'containers', 'f'.repeat(63) + '1'), monitorPid: zombie },
      { ...base, id: 'f'.repeat(63) + '2', name: 'live-monitor', bundle: join(root, 'containers', 'f'.repeat(63) + '2'), monitorPid: process.pid },
    ];
    for (const r of recs) {
      await mkdir(r.bundle, { recursive: true });
      await writeRecord(r);
    }
    const byName = Object.fromEntries((await listContainers(store)).map((c) => [c.name, c]));
    expect(byName['zombie-monitor']).toMatchObject({ status: 'exited', reason: 'Unknown' });
    // A live monitor still keeps its container "running" while it records the exit.
    expect(byName['live-monitor']).toMatchObject({ status: 'running' });
  });
});

describe('run -d job file', () => {
  it('is written mode 0600, also over a world-readable leftover with the same name', async () => {
    const dir = await temps.make('jobs');
    const job = { root: dir, options: { id: 'a'.repeat(64), image: 'busybox', env: ['TOKEN=s3cret'] } };
    const fresh = join(dir, 'fresh.job.json');
    await writeJobFile(fresh, job);
    expect((await stat(fresh)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(fresh, 'utf8'))).toEqual(job);
    const leftover = join(dir, 'leftover.job.json');
    await writeFile(leftover, '{}');
    await chmod(leftover, 0o644);
    await writeJobFile(leftover, job);
    expect((await stat(leftover)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(leftover, 'utf8'))).toEqual(job);
  });
});
