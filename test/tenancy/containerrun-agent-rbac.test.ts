/**
 * The node agent's identity, as the chart makes it, against the real API server: its Pod-bound
 * token (node-t) may write the runs bound to node-t and nothing else; it reads Secrets only, and
 * only by name, in namespaces that opted in; a token of the same ServiceAccount that names no node
 * may write no run at all. Each forbidden answer is asserted with its reason.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION } from '../../src/k8s/api/common.js';
import { ApiError, KubeClient } from '../../src/k8s/runtime/client.js';
import { ok, waitFor } from '../controllers/helpers.js';
import { ContainerRunRig, NODE, SYSTEM_NS, runsPath } from './containerrun-rig.js';

const OPTED = 'team-in';
const OTHER = 'team-out';
const rig = new ContainerRunRig({ tenants: [OPTED], startAgent: false });
let agent: KubeClient;

beforeAll(async () => {
  await rig.start();
  // A namespace that did not opt in: created by the administrator, not listed in agent.secretNamespaces.
  await rig.cp.createNamespace(OTHER);
  for (const ns of [OPTED, OTHER]) {
    await ok(rig.cp, 'POST', `/api/v1/namespaces/${ns}/secrets`, { metadata: { name: 'db' }, stringData: { password: 'hunter2' } });
    for (const [name, nodeName] of [
      ['here', NODE],
      ['there', 'node-other'],
    ]) {
      await ok(rig.cp, 'POST', runsPath(ns, name), {
        apiVersion: API_VERSION,
        kind: 'ContainerRun',
        metadata: { name },
        spec: { image: 'example.com/x:1', nodeName },
      });
    }
  }
  agent = new KubeClient(rig.cp.kubeConfigForToken(await rig.nodeBoundAgentToken(NODE)));
  // The API server loads admission policies through an informer: a policy is enforced a moment
  // after it is created (longer on a loaded machine). Wait until a dry-run of a forbidden write is
  // refused, so the assertions below test the policy, not the race.
  await waitFor(
    'the node-binding policy to be enforced',
    () => answer(agent.patch(`${runsPath(OPTED, 'there')}/status?dryRun=All`, { status: { phase: 'Failed' } })),
    (a) => a.status === 403,
    60_000,
  );
}, 180_000);
afterAll(() => rig.stop(), 60_000);

async function answer(p: Promise<unknown>): Promise<{ status: number; message: string }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (err === undefined) return { status: 200, message: '' };
  if (!(err instanceof ApiError)) throw err;
  return { status: err.status, message: err.message };
}

describe('the agent identity with the chart RBAC and node-binding policy', () => {
  it('writes the status of a run bound to its node', async () => {
    expect(await answer(agent.patch(`${runsPath(OPTED, 'here')}/status`, { status: { phase: 'Pulling', nodeName: NODE } }))).toEqual({
      status: 200,
      message: '',
    });
  });

  it('may not write a run bound to another node, nor bind one to another node, nor renew another node’s Lease', async () => {
    const other = await answer(agent.patch(`${runsPath(OPTED, 'there')}/status`, { status: { phase: 'Failed' } }));
    expect(other.status).toBe(403);
    expect(other.message).toContain(`the node agent of ${NODE} may write only ContainerRuns bound to its own node`);
    const finalizer = await answer(agent.patch(runsPath(OPTED, 'there'), { metadata: { finalizers: [] } }));
    expect(finalizer.status).toBe(403);
    const steal = await answer(agent.patch(`${runsPath(OPTED, 'here')}/status`, { status: { nodeName: 'node-other' } }));
    expect(steal.status).toBe(403);
    expect(steal.message).toContain('may not bind a run to another node');
    const lease = await answer(
      agent.create(`/apis/coordination.k8s.io/v1/namespaces/${SYSTEM_NS}/leases`, {
        metadata: { name: 'stevedore-agent-node-other' },
        spec: { holderIdentity: 'node-other', leaseDurationSeconds: 40 },
      }),
    );
    expect(lease.status).toBe(403);
    expect(lease.message).toContain(`may renew only its own Lease stevedore-agent-${NODE}`);
    const own = await answer(
      agent.create(`/apis/coordination.k8s.io/v1/namespaces/${SYSTEM_NS}/leases`, {
        metadata: { name: `stevedore-agent-${NODE}` },
        spec: { holderIdentity: NODE, leaseDurationSeconds: 40 },
      }),
    );
    expect(own.status).toBe(200);
  });

  it('reads a Secret by name only in a namespace that opted in; never lists Secrets, never reads elsewhere', async () => {
    expect((await answer(agent.get(`/api/v1/namespaces/${OPTED}/secrets/db`))).status).toBe(200);
    const elsewhere = await answer(agent.get(`/api/v1/namespaces/${OTHER}/secrets/db`));
    expect(elsewhere.status).toBe(403);
    expect(elsewhere.message).toMatch(/cannot get resource "secrets" in API group "" in the namespace "team-out"/);
    const list = await answer(agent.get(`/api/v1/namespaces/${OPTED}/secrets`));
    expect(list.status).toBe(403);
    expect(list.message).toMatch(/cannot list resource "secrets"/);
    const cluster = await answer(agent.get('/api/v1/secrets'));
    expect(cluster.status).toBe(403);
    // Nor may it create, delete or run anything: no Pods, no runs of its own.
    expect(
      (await answer(agent.create(`/api/v1/namespaces/${OPTED}/pods`, { metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'x' }] } }))).status,
    ).toBe(403);
    expect(
      (await answer(agent.create(runsPath(OPTED), { apiVersion: API_VERSION, kind: 'ContainerRun', metadata: { name: 'mine' }, spec: { image: 'x' } }))).status,
    ).toBe(403);
  });

  it('a token of the same ServiceAccount that names no node writes no run at all', async () => {
    const unbound = new KubeClient(rig.cp.kubeConfigForToken(await rig.cp.serviceAccountToken(SYSTEM_NS, 'stevedore-agent')));
    const res = await answer(unbound.patch(`${runsPath(OPTED, 'here')}/status`, { status: { phase: 'Failed' } }));
    expect(res.status).toBe(403);
    expect(res.message).toContain("the node agent's token names no node");
  });
});
