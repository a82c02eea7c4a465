/**
 * Agent recovery on the real agent process: while the agent is down, one run is deleted, one is
 * marked Failed/NodeLost (as the controller does after the failover window) and one is bound to
 * another node. When the agent comes back, their containers, still running under their monitors,
 * are stopped and removed before it takes any run, with their volumes (a Secret's tmpfs unmounted);
 * a run that is still wanted keeps running.
 */
import { readFile, stat } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerState as attemptState } from '../../src/runtime/lifecycle/state.js';
import { attemptContainerId } from '../../src/agent/naming.js';
import { runVolumesDir } from '../../src/agent/volumes.js';
import { ImageStore } from '../../src/runtime/store/index.js';
import { ok, waitFor } from '../controllers/helpers.js';
import { ContainerRunRig, runsPath } from './containerrun-rig.js';

const NS = 'team-r';
const PRIV = 'team-r-priv';
const rig = new ContainerRunRig({ tenants: [NS, PRIV], privileged: [PRIV] });

beforeAll(async () => {
  await rig.start();
  await rig.pullSecret(NS);
  await rig.pullSecret(PRIV);
}, 180_000);
afterAll(() => rig.stop(), 60_000);

describe('an agent that comes back', () => {
  it('stops and removes the containers of runs that were deleted, ended or moved while it was away, and keeps the others', async () => {
    const sleeper = { command: ['busybox', 'sleep', '300'], imagePullSecrets: [{ name: 'pull' }] };
    const uids: Record<string, string> = {};
    for (const name of ['gone', 'ended', 'moved', 'kept']) {
      // `moved` is bound by the controller (status.nodeName), so another node can take it.
      const spec = name === 'moved' ? { ...sleeper, nodeName: undefined } : sleeper;
      uids[name] = (await rig.createRun(NS, name, spec)).metadata.uid!;
    }
    // Without a user namespace (granted), with a Secret volume on a tmpfs: its volumes go too.
    const priv = await rig.createRun(PRIV, 'gone-priv', {
      ...sleeper,
      hostUsers: true,
      volumes: [{ name: 'pull', mountPath: '/pull', secret: { secretName: 'pull' } }],
    });
    for (const name of Object.keys(uids)) await rig.waitPhase(NS, name, ['Running']);
    await rig.waitPhase(PRIV, 'gone-priv', ['Running']);
    const privVolumes = runVolumesDir(rig.storeRoot, priv.metadata.uid!);
    expect(await readFile('/proc/self/mountinfo', 'utf8')).toContain(privVolumes);
    const store = await ImageStore.open(rig.storeRoot);
    const state = async (name: string) => (await attemptState(store, attemptContainerId(uids[name]!, 0))).state;

    await rig.agent!.stop();
    // Away: the containers keep running under their monitors.
    for (const name of Object.keys(uids)) expect(await state(name)).toBe('running');
    for (const [ns, name] of [
      [NS, 'gone'],
      [PRIV, 'gone-priv'],
    ] as const) {
      await ok(rig.cp, 'PATCH', runsPath(ns, name), { metadata: { finalizers: null } }, 'application/merge-patch+json');
      await ok(rig.cp, 'DELETE', runsPath(ns, name));
    }
    await ok(
      rig.cp,
      'PATCH',
      `${runsPath(NS, 'ended')}/status`,
      { status: { phase: 'Failed', reason: 'NodeLost', message: 'the node agent stopped renewing its Lease' } },
      'application/merge-patch+json',
    );
    await ok(rig.cp, 'PATCH', `${runsPath(NS, 'moved')}/status`, { status: { nodeName: 'node-elsewhere' } }, 'application/merge-patch+json');

    await rig.startAgent();
    for (const name of ['gone', 'ended', 'moved']) {
      await waitFor(
        `${name}'s container removed`,
        () => state(name),
        (s) => s === 'absent',
        30_000,
      );
    }
    await waitFor(
      "gone-priv's container removed",
      async () => (await attemptState(store, attemptContainerId(priv.metadata.uid!, 0))).state,
      (s) => s === 'absent',
      30_000,
    );
    await waitFor(
      "gone-priv's volumes released",
      () =>
        stat(privVolumes).then(
          () => 'present',
          (e: NodeJS.ErrnoException) => e.code,
        ),
      (s) => s === 'ENOENT',
      30_000,
    );
    expect(await readFile('/proc/self/mountinfo', 'utf8')).not.toContain(privVolumes);
    expect(await state('kept')).toBe('running');
    // Marked Unknown/NodeLost by the controller while its agent was away, Running again now.
    await rig.waitPhase(NS, 'kept', ['Running']);
    const log = await readFile(rig.agentLog, 'utf8');
    expect(log).toMatch(/"why":"gone"/);
    expect(log).toMatch(/"why":"terminal"/);
    expect(log).toMatch(/"why":"moved"/);
    await rig.cp.request('DELETE', runsPath(NS, 'kept'));
  }, 120_000);
});
