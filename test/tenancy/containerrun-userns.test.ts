/**
 * Every ContainerRun runs in a user namespace of its own (the `hostUsers: false` model), with a
 * block of 65536 ids no other live run holds, whether or not the tenant asks for uid 0: proven on
 * the real agent process with runc by reading the kernel's view of the containers' processes.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attemptContainerId } from '../../src/agent/naming.js';
import { parseIdMapFile } from '../../src/runtime/idmap.js';
import { ociRuntime } from '../../src/runtime/oci-runtime.js';
import type { ContainerRecord } from '../../src/runtime/containers.js';
import { waitFor } from '../controllers/helpers.js';
import { ContainerRunRig, runsPath } from './containerrun-rig.js';

const A = 'team-a';
const B = 'team-b';
const rig = new ContainerRunRig({ tenants: [A, B] });

beforeAll(async () => {
  await rig.start();
  await rig.pullSecret(A);
  await rig.pullSecret(B);
}, 180_000);
afterAll(() => rig.stop(), 60_000);

/** The pid of a run's container (attempt 0) as the runtime reports it. */
async function containerPid(uid: string): Promise<number> {
  const id = attemptContainerId(uid, 0);
  const rec = JSON.parse(await readFile(join(rig.storeRoot, 'containers', id, 'state.json'), 'utf8')) as ContainerRecord;
  const state = await ociRuntime(rec.runtime, rec.stateRoot ? { stateRoot: rec.stateRoot } : {}).state(id);
  return state.pid!;
}

/** Every process in the same pid namespace as `pid`, with its real, effective, saved and fs uids. */
async function processesOfContainer(pid: number): Promise<{ pid: number; uids: number[]; gids: number[] }[]> {
  const ns = await readlink(`/proc/${pid}/ns/pid`);
  const out: { pid: number; uids: number[]; gids: number[] }[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const mine = await readlink(`/proc/${name}/ns/pid`).catch(() => undefined);
    if (mine !== ns) continue;
    const status = await readFile(`/proc/${name}/status`, 'utf8').catch(() => undefined);
    if (!status) continue;
    const ids = (field: string) =>
      /^(?:Uid|Gid):\s+(.*)$/m
        .exec(
          status
            .split('\n')
            .filter((l) => l.startsWith(field))
            .join('\n'),
        )![1]!
        .split(/\s+/)
        .map(Number);
    out.push({ pid: Number(name), uids: ids('Uid:'), gids: ids('Gid:') });
  }
  return out;
}

describe('per-run user namespaces on the real agent with runc', () => {
  it('two concurrent runs (uid 0 inside) get disjoint blocks of 65536 ids; no process of either is host uid 0; the blocks survive an agent restart and are given back on delete', async () => {
    const sleeper = { command: ['sh', '-c', 'busybox sleep 300 & busybox sleep 300'], user: '0', imagePullSecrets: [{ name: 'pull' }] };
    const a = await rig.createRun(A, 'root-a', sleeper);
    const b = await rig.createRun(B, 'root-b', sleeper);
    await rig.waitPhase(A, 'root-a', ['Running']);
    await rig.waitPhase(B, 'root-b', ['Running']);

    const maps = [];
    for (const run of [a, b]) {
      const pid = await containerPid(run.metadata.uid!);
      const uidMap = parseIdMapFile(await readFile(`/proc/${pid}/uid_map`, 'utf8'));
      const gidMap = parseIdMapFile(await readFile(`/proc/${pid}/gid_map`, 'utf8'));
      // One block: container 0..65535 → 65536 unprivileged host ids.
      expect(uidMap).toHaveLength(1);
      expect(uidMap[0]).toMatchObject({ containerID: 0, size: 65536 });
      expect(uidMap[0]!.hostID).toBeGreaterThan(0);
      expect(gidMap).toEqual(uidMap);
      const procs = await waitFor(
        `both sleeps of ${run.metadata.name}`,
        () => processesOfContainer(pid),
        (p) => p.length >= 2,
      );
      for (const p of procs) {
        // uid 0 in the container, never 0 on the host: the block's first id.
        for (const u of p.uids) expect(u, `pid ${p.pid} of ${run.metadata.name}`).toBe(uidMap[0]!.hostID);
        for (const g of p.gids) expect(g).toBe(uidMap[0]!.hostID);
      }
      maps.push(uidMap[0]!);
    }
    const [ma, mb] = [maps[0]!, maps[1]!];
    const disjoint = ma.hostID + ma.size <= mb.hostID || mb.hostID + mb.size <= ma.hostID;
    expect(disjoint, `${ma.hostID}+${ma.size} vs ${mb.hostID}+${mb.size}`).toBe(true);

    // Persisted: a restarted agent keeps both blocks held and gives a third run a third block.
    const table = JSON.parse(await readFile(join(rig.storeRoot, 'agent', 'userns.json'), 'utf8')) as { blocks: Record<string, number> };
    expect(table.blocks).toEqual({ [a.metadata.uid!]: ma.hostID, [b.metadata.uid!]: mb.hostID });
    await rig.agent!.stop();
    await rig.startAgent();
    const c = await rig.createRun(A, 'root-c', sleeper);
    await rig.waitPhase(A, 'root-c', ['Running']);
    const mc = parseIdMapFile(await readFile(`/proc/${await containerPid(c.metadata.uid!)}/uid_map`, 'utf8'))[0]!;
    for (const m of [ma, mb]) expect(mc.hostID + mc.size <= m.hostID || m.hostID + m.size <= mc.hostID).toBe(true);
    // The first two still run, unchanged, under the restarted agent.
    expect((await rig.getRun(A, 'root-a'))?.status?.phase).toBe('Running');

    // Deleted runs give their blocks back once their containers are gone.
    for (const [ns, name] of [
      [A, 'root-a'],
      [B, 'root-b'],
      [A, 'root-c'],
    ] as const)
      await rig.cp.request('DELETE', runsPath(ns, name));
    await waitFor(
      'blocks released',
      async () => JSON.parse(await readFile(join(rig.storeRoot, 'agent', 'userns.json'), 'utf8')) as { blocks: Record<string, number> },
      (t) => Object.keys(t.blocks).length === 0,
      30_000,
    );
  }, 120_000);
});
