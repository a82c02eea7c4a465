/**
 * The agent's store under a directory the runs' user-namespace ids cannot pass through (a 0700
 * mkdtemp directory, as `make demo` had): runc failed every run with "permission denied" mounting
 * its rootfs. The agent now refuses to start, naming the directory and the mode it needs; with that
 * mode given, a run on the real agent (root, runc, per-run user namespace) succeeds.
 */
import { chmod } from 'node:fs/promises';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directoriesAbove } from '../../src/agent/store-reach.js';
import { startAgentProcess } from '../controllers/agent-process.js';
import { ContainerRunRig, NODE, SYSTEM_NS } from '../tenancy/containerrun-rig.js';

const T = 'team-store';
const rig = new ContainerRunRig({ tenants: [T], admission: false, startAgent: false });

beforeAll(async () => {
  await rig.start();
  await rig.pullSecret(T);
}, 180_000);
afterAll(() => rig.stop(), 60_000);

describe('directoriesAbove', () => {
  it('lists every directory above a path, from / down, not the path itself', () => {
    expect(directoriesAbove('/tmp/a/store')).toEqual(['/', '/tmp', '/tmp/a']);
    expect(directoriesAbove('/store')).toEqual(['/']);
  });
});

describe('the agent store under a private (0700) directory', () => {
  it('the agent refuses to start, naming the directory and the mode it needs; given o+x, a run in its own user namespace succeeds', async () => {
    const parent = await rig.temps.make('private-parent'); // mkdtemp: mode 0700
    rig.storeRoot = join(parent, 'store');
    const refused = await startAgentProcess({
      nodeName: NODE,
      kubeconfig: rig.agentKubeconfig,
      leaseNamespace: SYSTEM_NS,
      root: rig.storeRoot,
      log: rig.agentLog,
    });
    const exit = await Promise.race([refused.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 20_000))]);
    if (exit === 'running') await refused.stop();
    const log = await readFile(rig.agentLog, 'utf8');
    expect(exit, log).not.toBe('running');
    expect((exit as { code: number | null }).code, log).not.toBe(0);
    expect(log).toContain(`is inside ${parent} (mode 0700`);
    expect(log).toContain(`chmod o+x ${parent}`);

    // The administrator does what the message says; the agent starts and the run gets to its rootfs.
    await chmod(parent, 0o711);
    await rig.startAgent();
    await rig.createRun(T, 'hello', { command: ['sh', '-c', 'echo hello from $(id -u)'], imagePullSecrets: [{ name: 'pull' }] });
    const run = await rig.waitPhase(T, 'hello', ['Succeeded', 'Failed'], 60_000);
    expect(run.status, await rig.agentLogTail()).toMatchObject({ phase: 'Succeeded', exitCode: 0 });
    expect(run.status?.logTail).toContain('hello from 0');
  }, 150_000);
});
