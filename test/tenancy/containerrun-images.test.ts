/**
 * Private images across tenants through the node's store (KEP-2535) and the agent's own
 * credentials (a confused deputy), on the real agent process, a real registry with basic auth and
 * the real API server: tenant B runs its private image by digest with its pull Secret; tenant A,
 * with no Secret, asks for the same digest and is refused, although the node has the image; and
 * the agent's own auth file (REGISTRY_AUTH_FILE, which the CLI would use) lends nobody anything.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PullRecords, credentialsIdentity } from '../../src/agent/pull-records.js';
import { ContainerRunRig } from './containerrun-rig.js';

const A = 'team-a';
const B = 'team-b';
const rig = new ContainerRunRig({ tenants: [A, B], startAgent: false });

beforeAll(async () => {
  await rig.start();
  await rig.pullSecret(B);
  // The agent process is given working credentials of its own, as `extraEnv` in the chart could.
  const dir = await rig.temps.make('agent-auth');
  const authFile = join(dir, 'auth.json');
  const auth = Buffer.from(`${rig.reg.username}:${rig.reg.password}`).toString('base64');
  await writeFile(authFile, JSON.stringify({ auths: { [rig.reg.host]: { auth } } }));
  process.env['REGISTRY_AUTH_FILE'] = authFile;
  try {
    await rig.startAgent();
  } finally {
    delete process.env['REGISTRY_AUTH_FILE'];
  }
}, 180_000);
afterAll(() => rig.stop(), 60_000);

describe('images and credentials across tenants on one node', () => {
  it('a run without a pull Secret never borrows the agent’s own credentials', async () => {
    await rig.createRun(A, 'borrow', { command: ['true'] });
    const run = await rig.waitPhase(A, 'borrow', ['Failed', 'Succeeded'], 60_000);
    expect(run.status).toMatchObject({ phase: 'Failed', reason: 'ErrImagePull' });
    expect(run.status?.message).toMatch(/401|unauthori[sz]ed|authentication required/i);
  });

  it('tenant A cannot run tenant B’s private image by digest from the node’s store; B, and A with its own Secret, can', async () => {
    const byDigest = `${rig.reg.host}/tools/busybox@${rig.imageDigest}`;
    await rig.createRun(B, 'owner', { image: byDigest, command: ['sh', '-c', 'echo mine'], imagePullSecrets: [{ name: 'pull' }] });
    const owner = await rig.waitPhase(B, 'owner', ['Failed', 'Succeeded'], 60_000);
    expect(owner.status, await rig.agentLogTail()).toMatchObject({ phase: 'Succeeded', imageDigest: rig.imageDigest });

    // The node has the image now, recorded as fetched with B's credentials only.
    const records = await PullRecords.open(rig.storeRoot);
    expect(records.mayReuse(rig.imageDigest, undefined)).toBe(false);
    expect(records.mayReuse(rig.imageDigest, credentialsIdentity(rig.reg.host, { username: rig.reg.username!, password: rig.reg.password! }))).toBe(true);

    await rig.createRun(A, 'thief', { image: byDigest, command: ['sh', '-c', 'echo stolen'] });
    const thief = await rig.waitPhase(A, 'thief', ['Failed', 'Succeeded'], 60_000);
    expect(thief.status).toMatchObject({ phase: 'Failed', reason: 'ErrImagePull' });
    expect(thief.status?.logTail ?? '').not.toContain('stolen');

    // With a Secret of its own that reaches the registry, A may use it (reused after the check).
    await rig.pullSecret(A, 'own');
    await rig.createRun(A, 'licensed', { image: byDigest, command: ['sh', '-c', 'echo licensed'], imagePullSecrets: [{ name: 'own' }] });
    const licensed = await rig.waitPhase(A, 'licensed', ['Failed', 'Succeeded'], 60_000);
    expect(licensed.status).toMatchObject({ phase: 'Succeeded', logTail: 'licensed\n' });
  });
});
