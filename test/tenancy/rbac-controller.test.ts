// The controller's RBAC as the chart installs it, proven with real requests: the chart is rendered
// with helm (tenantNamespaces={team-a}), its RBAC applied to a real API server, and the controller
// ServiceAccount's token (TokenRequest) used for the calls the controller makes and for the ones it
// must not be able to make: read a Secret of a namespace that was not opted in (team-b, kube-system),
// create a Pod in kube-system, touch Leases outside the release namespace, list Secrets anywhere.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { startControlPlane, type ControlPlane } from '../../hack/lib/harness/controlplane.js';
import { tenantRequest } from './tenant.js';

const exec = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHART = join(ROOT, 'charts', 'stevedore');
const RELEASE = 'stevedore';
const NAMESPACE = 'stevedore-system';

function helmPath(): string {
  if (process.env['HELM']) return process.env['HELM'];
  const m = /^HELM_VERSION\s*:?=\s*(v\S+)/m.exec(readFileSync(join(ROOT, 'hack', 'helm.mk'), 'utf8'));
  if (!m) throw new Error('hack/helm.mk pins no HELM_VERSION');
  return join(process.env['STEVEDORE_CACHE'] || join(homedir(), '.cache', 'stevedore'), 'bin', `helm-${m[1]}`);
}

interface K8sObject {
  kind: string;
  metadata: { name: string; namespace?: string };
}

const helmHome = mkdtempSync(join(tmpdir(), 'stevedore-helm-'));
let cp: ControlPlane;
let token: string;

beforeAll(async () => {
  const helm = helmPath();
  if (!existsSync(helm)) throw new Error(`helm not found at ${helm}; build it with \`make helm\` or set HELM`);
  const { stdout } = await exec(helm, ['template', RELEASE, CHART, '--namespace', NAMESPACE, '--set', 'tenantNamespaces={team-a}'], {
    env: { ...process.env, HELM_CONFIG_HOME: join(helmHome, 'c'), HELM_CACHE_HOME: join(helmHome, 'k'), HELM_DATA_HOME: join(helmHome, 'd') },
  });
  const objs = parseAllDocuments(stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
  cp = await startControlPlane();
  await cp.installCRDs();
  for (const ns of [NAMESPACE, 'team-a', 'team-b']) await cp.createNamespace(ns);
  const paths: Record<string, (ns: string) => string> = {
    ServiceAccount: (ns) => `/api/v1/namespaces/${ns}/serviceaccounts`,
    ClusterRole: () => '/apis/rbac.authorization.k8s.io/v1/clusterroles',
    ClusterRoleBinding: () => '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
    Role: (ns) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`,
    RoleBinding: (ns) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`,
  };
  const rbac = objs.filter((o) => o.kind in paths);
  expect(rbac.map((o) => `${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`).sort()).toEqual([
    `ClusterRole /${RELEASE}-controller`,
    `ClusterRole /${RELEASE}-metrics-reader`,
    `ClusterRole /${RELEASE}-tenant`,
    `ClusterRoleBinding /${RELEASE}-controller`,
    `Role ${NAMESPACE}/${RELEASE}-leader-election`,
    `RoleBinding ${NAMESPACE}/${RELEASE}-leader-election`,
    `RoleBinding team-a/${RELEASE}-tenant`,
    `ServiceAccount ${NAMESPACE}/${RELEASE}`,
  ]);
  for (const o of rbac) {
    const res = await cp.request('POST', paths[o.kind]!(o.metadata.namespace ?? ''), {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(o),
    });
    if (res.status >= 300) throw new Error(`create ${o.kind} ${o.metadata.name}: ${res.status} ${res.body}`);
  }
  // Something to read (or not) in each namespace, created by the administrator.
  for (const ns of ['team-a', 'team-b', 'kube-system']) {
    await cp.createNamespace(ns);
    const res = await cp.request('POST', `/api/v1/namespaces/${ns}/secrets`, {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ metadata: { name: 'registry' }, type: 'Opaque', stringData: { password: `pw-${ns}` } }),
    });
    if (res.status >= 300) throw new Error(`secret in ${ns}: ${res.status} ${res.body}`);
  }
  token = await cp.serviceAccountToken(NAMESPACE, RELEASE);
});

afterAll(async () => {
  await cp?.stop();
  rmSync(helmHome, { recursive: true, force: true });
});

const as = (method: string, path: string, body?: unknown) => tenantRequest(cp, token, method, path, body);
/** 403 from the authorizer (not a 404 or an admission error): the RBAC said no. */
async function forbidden(method: string, path: string, body?: unknown): Promise<void> {
  const res = await as(method, path, body);
  expect(res.status, `${method} ${path}: ${res.body}`).toBe(403);
  expect(res.body).toMatch(/cannot (get|list|create|update|delete|patch|watch) resource/);
}
/** Whatever the answer, it is not the authorizer's refusal. */
async function allowed(method: string, path: string, body?: unknown): Promise<void> {
  const res = await as(method, path, body);
  expect(res.body, `${method} ${path}`).not.toMatch(/cannot (get|list|create|update|delete|patch|watch) resource/);
  expect(res.status, `${method} ${path}: ${res.body}`).toBeLessThan(300);
}

const pod = (name: string) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name },
  spec: { automountServiceAccountToken: false, containers: [{ name: 'c', image: 'example.invalid/x:1' }] },
});
const lease = (name: string) => ({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name }, spec: {} });
const event = (ns: string) => ({
  apiVersion: 'events.k8s.io/v1',
  kind: 'Event',
  metadata: { name: `probe.${Date.now()}`, namespace: ns },
  eventTime: new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z'),
  reportingController: 'stevedore.dev/test',
  reportingInstance: 'test',
  action: 'Reconcile',
  reason: 'Probe',
  type: 'Normal',
  regarding: { apiVersion: 'stevedore.dev/v1alpha1', kind: 'ImageMirror', name: 'probe', namespace: ns },
});

describe('the controller ServiceAccount’s token (chart RBAC, tenantNamespaces={team-a})', () => {
  it('reads a Secret by name in an opted-in namespace, and lists none', async () => {
    await allowed('GET', '/api/v1/namespaces/team-a/secrets/registry');
    await forbidden('GET', '/api/v1/namespaces/team-a/secrets');
    await forbidden('GET', '/api/v1/secrets');
  });

  it('reads no Secret in a namespace that was not opted in, kube-system included', async () => {
    await forbidden('GET', '/api/v1/namespaces/team-b/secrets/registry');
    await forbidden('GET', '/api/v1/namespaces/kube-system/secrets/registry');
    await forbidden('GET', `/api/v1/namespaces/${NAMESPACE}/secrets/anything`);
  });

  it('creates build Pods in an opted-in namespace only: never in kube-system', async () => {
    await allowed('POST', '/api/v1/namespaces/team-a/pods?dryRun=All', pod('build-probe'));
    await forbidden('POST', '/api/v1/namespaces/kube-system/pods', pod('escape'));
    await forbidden('POST', '/api/v1/namespaces/team-b/pods', pod('escape'));
    await forbidden('DELETE', '/api/v1/namespaces/kube-system/pods/anything');
    // Pods are never changed or exec'd, anywhere.
    await forbidden('PATCH', '/api/v1/namespaces/team-a/pods/anything', {});
    // The build-Pod informer lists and watches cluster-wide.
    await allowed('GET', '/api/v1/pods?labelSelector=app.kubernetes.io%2Fcomponent%3Dbuild&limit=1');
  });

  it('uses Leases in the release namespace only', async () => {
    await allowed('POST', `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases`, lease('stevedore-controller'));
    await allowed('GET', `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases/stevedore-controller`);
    await forbidden('DELETE', `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases/stevedore-controller`);
    await forbidden('POST', '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases', lease('kube-scheduler'));
    await forbidden('PUT', '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-controller-manager', lease('kube-controller-manager'));
    await forbidden('POST', '/apis/coordination.k8s.io/v1/namespaces/team-a/leases', lease('x'));
  });

  it('records Events in opted-in namespaces only', async () => {
    await allowed('POST', '/apis/events.k8s.io/v1/namespaces/team-a/events', event('team-a'));
    await forbidden('POST', '/apis/events.k8s.io/v1/namespaces/team-b/events', event('team-b'));
  });

  it('reads no ConfigMap and changes no RBAC', async () => {
    await forbidden('GET', '/api/v1/namespaces/kube-system/configmaps');
    await forbidden('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      metadata: { name: 'escalate' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ kind: 'ServiceAccount', name: RELEASE, namespace: NAMESPACE }],
    });
  });
});
