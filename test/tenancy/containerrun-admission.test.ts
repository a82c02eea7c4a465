/**
 * The hostile tenant: a ServiceAccount bound to a namespaced Role over ContainerRuns (as a team
 * gets), on a real kube-apiserver with the CRDs' CEL rules and the chart's ValidatingAdmissionPolicy.
 * Each attempt at the node is refused at admission with the rule named; with the policy removed
 * the node agent refuses the privileged ones itself (PrivilegeNotGranted), taints included, which
 * admission cannot see; and a namespace an administrator labelled privileged gets what it asks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerRun } from '../../src/k8s/api/containerrun.js';
import { ApiError } from '../../src/k8s/runtime/client.js';
import { ok } from '../controllers/helpers.js';
import { ContainerRunRig, NODE } from './containerrun-rig.js';

const T = 'tenant';
const P = 'trusted';
const rig = new ContainerRunRig({ tenants: [T, P], privileged: [P] });

beforeAll(async () => {
  await rig.start();
  await rig.pullSecret(T);
  await rig.pullSecret(P);
}, 180_000);
afterAll(() => rig.stop(), 60_000);

/** The API server's answer to the tenant's create: status code and message. */
async function refusal(ns: string, name: string, spec: Partial<ContainerRun['spec']>): Promise<{ status: number; message: string }> {
  const err = await rig.createRun(ns, name, spec).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof ApiError)) throw new Error(`${name} was accepted`);
  return { status: err.status, message: err.message };
}

describe('a tenant bound to a namespaced Role', () => {
  it('is refused at admission, with the rule named, for each way to the node or past the agent', async () => {
    const hostNet = await refusal(T, 'host-net', { network: 'host', user: '0' });
    expect(hostNet.status).toBe(403);
    expect(hostNet.message).toMatch(
      /ContainerRun rule hostNetwork: spec\.network: host needs the privileged level.*stevedore\.dev\/containerrun-privileges=privileged/,
    );

    const hostUsers = await refusal(T, 'host-users', { hostUsers: true });
    expect(hostUsers.status).toBe(403);
    expect(hostUsers.message).toMatch(/ContainerRun rule hostUsers: spec\.hostUsers: true .*stevedore\.dev\/containerrun-privileges=privileged/);

    const cases: [string, Partial<ContainerRun['spec']>, RegExp][] = [
      [
        'dotdot',
        { volumes: [{ name: 's', mountPath: '/s', secret: { secretName: 'pull', items: [{ key: '.dockerconfigjson', path: '../../etc/passwd' }] } }] },
        /items\.path must not contain a "\.\." element/,
      ],
      ['colon', { volumes: [{ name: 'm', mountPath: '/a:b', emptyDir: { medium: 'Memory' } }] }, /mountPath must not contain ":" or ","/],
      ['comma', { volumes: [{ name: 'm', mountPath: '/a,size=1T', emptyDir: { medium: 'Memory' } }] }, /mountPath must not contain ":" or ","/],
      ['negcpu', { resources: { cpu: '-1' } }, /resources\.cpu must be greater than zero/],
      ['zeromem', { resources: { memory: 0 } }, /resources\.memory must be greater than zero/],
      ['zerotimeout', { timeout: '0s' }, /timeout must be at least 1s/],
      ['shorttimeout', { timeout: '500ms' }, /timeout must be at least 1s/],
    ];
    for (const [name, spec, rule] of cases) {
      const r = await refusal(T, name, spec);
      expect(r.status, name).toBe(422);
      expect(r.message, name).toMatch(rule);
    }
    // Nothing was created.
    const list = (await rig.cp.request('GET', `/apis/stevedore.dev/v1alpha1/namespaces/${T}/containerruns`)).json as { items: unknown[] };
    expect(list.items).toHaveLength(0);
    // The tenant cannot grant itself the level: Namespaces are not its to edit.
    const grant = await rig
      .tenant(T)
      .client.patch(`/api/v1/namespaces/${T}`, { metadata: { labels: { 'stevedore.dev/containerrun-privileges': 'privileged' } } })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(grant).toBeInstanceOf(ApiError);
    expect((grant as ApiError).status).toBe(403);
  });

  it('where the admission policy is not installed, the agent refuses the privileged runs itself (PrivilegeNotGranted) and pulls nothing', async () => {
    await ok(rig.cp, 'DELETE', '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/stevedore-containerrun-privileges');
    // The API server applies a removed binding within a moment: retry until the create goes through.
    let created = false;
    for (let i = 0; i < 50 && !created; i++) {
      created = await rig.createRun(T, 'sneak-net', { network: 'host', user: '0', command: ['true'], imagePullSecrets: [{ name: 'pull' }] }).then(
        () => true,
        () => false,
      );
      if (!created) await new Promise((r) => setTimeout(r, 200));
    }
    expect(created).toBe(true);
    await rig.createRun(T, 'sneak-users', { hostUsers: true, command: ['true'], imagePullSecrets: [{ name: 'pull' }] });
    for (const [name, rule] of [
      ['sneak-net', /spec\.network: host is granted by the Namespace label stevedore\.dev\/containerrun-privileges=privileged/],
      ['sneak-users', /spec\.hostUsers: true .* is granted by the Namespace label/],
    ] as const) {
      const run = await rig.waitPhase(T, name, ['Failed', 'Succeeded', 'Running']);
      expect(run.status).toMatchObject({ phase: 'Failed', reason: 'PrivilegeNotGranted' });
      expect(run.status?.message).toMatch(rule);
      expect(run.status?.imageDigest).toBeUndefined();
      expect(run.status?.conditions?.find((c) => c.type === 'Stalled')).toMatchObject({ status: 'True', reason: 'PrivilegeNotGranted' });
    }
  });

  it('an administrator-granted namespace runs with host network and without a user namespace: uid 0 is the node’s root there', async () => {
    await rig.createRun(P, 'privileged', {
      network: 'host',
      hostUsers: true,
      user: '0',
      command: ['sh', '-c', 'cat /proc/self/uid_map; ls /sys/class/net'],
      imagePullSecrets: [{ name: 'pull' }],
    });
    const run = await rig.waitPhase(P, 'privileged', ['Succeeded', 'Failed']);
    expect(run.status, await rig.agentLogTail()).toMatchObject({ phase: 'Succeeded', exitCode: 0 });
    expect(run.status?.logTail).toMatch(/^\s*0\s+0\s+4294967295$/m);
    expect(run.status?.logTail).toMatch(/^lo$/m);
  });

  it('pinning a run to a tainted node is refused by the agent in a restricted namespace and allowed in a granted one', async () => {
    const node = (await ok(rig.cp, 'GET', `/api/v1/nodes/${NODE}`)) as { spec?: { taints?: { key: string; effect: string }[] } };
    const taints = [...(node.spec?.taints ?? []), { key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }];
    await ok(rig.cp, 'PATCH', `/api/v1/nodes/${NODE}`, { spec: { taints } }, 'application/merge-patch+json');
    await rig.createRun(T, 'tainted', { command: ['true'], imagePullSecrets: [{ name: 'pull' }] });
    await rig.createRun(P, 'tainted-ok', { command: ['true'], imagePullSecrets: [{ name: 'pull' }] });
    const refused = await rig.waitPhase(T, 'tainted', ['Failed', 'Succeeded']);
    expect(refused.status).toMatchObject({ phase: 'Failed', reason: 'PrivilegeNotGranted' });
    expect(refused.status?.message).toContain(`node ${NODE} is tainted (node-role.kubernetes.io/control-plane:NoSchedule)`);
    expect((await rig.waitPhase(P, 'tainted-ok', ['Failed', 'Succeeded'])).status).toMatchObject({ phase: 'Succeeded' });
  });
});
