/**
 * ContainerRun `network: private` with `ports` (issue 18), on a real kube-apiserver with the CRDs'
 * rules and the chart's ValidatingAdmissionPolicy, and the real node agent running the container
 * with runc and pasta (or slirp4netns). Publishing is a listener on the node and the private
 * network's route leads to the node's loopback services: both are administrator-granted, so the
 * hostile tenant (no privilege label) is refused at admission, and by the agent where the policy
 * is missing; a granted namespace's run answers on its published loopback port.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerRun } from '../../src/k8s/api/containerrun.js';
import { ApiError } from '../../src/k8s/runtime/client.js';
import { ok } from '../controllers/helpers.js';
import { freePort, httpGet, sleep } from '../../hack/lib/harness/net.js';
import { ContainerRunRig } from './containerrun-rig.js';

const T = 'tenant';
const P = 'trusted';
const rig = new ContainerRunRig({ tenants: [T, P], privileged: [P] });

beforeAll(async () => {
  await rig.start();
  await rig.pullSecret(T);
  await rig.pullSecret(P);
}, 180_000);
afterAll(() => rig.stop(), 60_000);

async function refusal(ns: string, name: string, spec: Partial<ContainerRun['spec']>): Promise<{ status: number; message: string }> {
  const err = await rig.createRun(ns, name, spec).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof ApiError)) throw new Error(`${name} was accepted`);
  return { status: err.status, message: err.message };
}

const serve = (port: number, seconds: number): string[] => [
  'sh',
  '-c',
  `busybox mkdir -p /tmp/www && echo served-by-containerrun > /tmp/www/index.html && busybox timeout -s TERM ${seconds} busybox httpd -f -p ${port} -h /tmp/www; exit 0`,
];

describe('ContainerRun network: private with ports', () => {
  it('the API refuses ports without network private, and a host port published twice', async () => {
    const noNet = await refusal(P, 'ports-no-net', { ports: [{ containerPort: 8080, hostPort: 18080 }] });
    expect(noNet.status).toBe(422);
    expect(noNet.message).toMatch(/ports need network: private/);
    const twice = await refusal(P, 'ports-twice', {
      network: 'private',
      ports: [
        { containerPort: 8080, hostPort: 18080 },
        { containerPort: 8081, hostPort: 18080 },
      ],
    });
    expect(twice.status).toBe(422);
    expect(twice.message).toMatch(/a hostPort may be published once per protocol/);
  });

  it('a tenant without the privilege label is refused at admission, naming the rule and the label', async () => {
    const ports = await refusal(T, 'publish', { network: 'private', ports: [{ containerPort: 8080, hostPort: 18080 }] });
    expect(ports.status).toBe(403);
    expect(ports.message).toMatch(
      /ContainerRun rule publishPorts: spec\.ports \(a listener on the node\) needs the privileged level.*stevedore\.dev\/containerrun-privileges=privileged/,
    );
    const priv = await refusal(T, 'private', { network: 'private' });
    expect(priv.status).toBe(403);
    expect(priv.message).toMatch(/ContainerRun rule privateNetwork: spec\.network: private .*stevedore\.dev\/containerrun-privileges=privileged/);
    const list = (await rig.cp.request('GET', `/apis/stevedore.dev/v1alpha1/namespaces/${T}/containerruns`)).json as { items: unknown[] };
    expect(list.items).toHaveLength(0);
  });

  it("a granted namespace's run answers on its published loopback port; the port is free again when it ends", async () => {
    const hostPort = await freePort();
    await rig.createRun(P, 'web', {
      network: 'private',
      ports: [{ containerPort: 8080, hostPort }],
      command: serve(8080, 8),
      imagePullSecrets: [{ name: 'pull' }],
    });
    const running = await rig.waitPhase(P, 'web', ['Running', 'Succeeded', 'Failed'], 60_000);
    expect(running.status?.phase, `${running.status?.message}\n${running.status?.logTail}\n${await rig.agentLogTail()}`).toBe('Running');
    // hostIP defaulted to the node's loopback
    expect(running.spec.ports?.[0]).toMatchObject({ hostIP: '127.0.0.1', protocol: 'TCP' });
    let body = '';
    for (let i = 0; i < 40 && body === ''; i++) {
      body = await httpGet(`http://127.0.0.1:${hostPort}/index.html`).then(
        (r) => (r.status === 200 ? r.body : ''),
        () => '',
      );
      if (body === '') await sleep(200);
    }
    expect(body).toBe('served-by-containerrun\n');
    const done = await rig.waitPhase(P, 'web', ['Succeeded', 'Failed'], 60_000);
    expect(done.status).toMatchObject({ phase: 'Succeeded', exitCode: 0 });
    const after = await httpGet(`http://127.0.0.1:${hostPort}/`).then(
      () => 'answered',
      () => 'refused',
    );
    expect(after).toBe('refused');
  });

  it('where the admission policy is not installed, the agent refuses the run itself (PrivilegeNotGranted)', async () => {
    await ok(rig.cp, 'DELETE', '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/stevedore-containerrun-privileges');
    let created = false;
    for (let i = 0; i < 50 && !created; i++) {
      created = await rig
        .createRun(T, 'sneak-ports', {
          network: 'private',
          ports: [{ containerPort: 8080, hostPort: await freePort() }],
          command: ['true'],
          imagePullSecrets: [{ name: 'pull' }],
        })
        .then(
          () => true,
          () => false,
        );
      if (!created) await sleep(200);
    }
    expect(created).toBe(true);
    const run = await rig.waitPhase(T, 'sneak-ports', ['Failed', 'Succeeded', 'Running']);
    expect(run.status).toMatchObject({ phase: 'Failed', reason: 'PrivilegeNotGranted' });
    expect(run.status?.message).toMatch(/spec\.network: private .* is granted by the Namespace label/);
    expect(run.status?.message).toMatch(/spec\.ports \(a listener on the node\) is granted by the Namespace label/);
  });
});
