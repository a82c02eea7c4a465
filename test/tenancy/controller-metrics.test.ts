// /metrics behind authentication and authorization (TokenReview + SubjectAccessReview, as
// kube-rbac-proxy), on a real API server: the controller runs as its ServiceAccount with
// config/rbac (which grants the reviews), on a non-loopback-only address as the chart runs it.
// Without a token: 401; with a token the API server rejects: 401; with a valid token of an
// identity not allowed `get /metrics` (a tenant): 403; bound to a metrics-reader role: 200 and the
// metrics. The probes answer without credentials.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rootLogger } from '../../src/util/log.js';
import { createControllerManager } from '../../src/controllers/setup.js';
import type { Manager } from '../../src/k8s/runtime/manager.js';
import { startControlPlane, type ControlPlane } from '../../hack/lib/harness/controlplane.js';
import { controllerToken } from '../controllers/helpers.js';
import { tenantSetup } from './tenant.js';

const SYSTEM_NS = 'stevedore-system';
const NS = 'team-m';
let cp: ControlPlane;
let manager: Manager;
let stop: AbortController;
let running: Promise<void>;
let tenantToken: string;
let scraperToken: string;

async function admin(path: string, body: unknown): Promise<void> {
  const res = await cp.request('POST', path, { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (res.status >= 300) throw new Error(`POST ${path}: ${res.status} ${res.body}`);
}

beforeAll(async () => {
  cp = await startControlPlane();
  await cp.installCRDs();
  await cp.createNamespace(NS);
  await cp.createNamespace('monitoring');
  tenantToken = await tenantSetup(cp, NS, 'tenant');
  // The scraper: bound to a ClusterRole with get on /metrics, as the chart's <release>-metrics-reader.
  await admin('/apis/rbac.authorization.k8s.io/v1/clusterroles', {
    metadata: { name: 'metrics-reader' },
    rules: [{ nonResourceURLs: ['/metrics'], verbs: ['get'] }],
  });
  scraperToken = await cp.serviceAccountToken('monitoring', 'prometheus');
  await admin('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    metadata: { name: 'prometheus-metrics-reader' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'metrics-reader' },
    subjects: [{ kind: 'ServiceAccount', name: 'prometheus', namespace: 'monitoring' }],
  });
  manager = createControllerManager({
    kubeConfig: cp.kubeConfigForToken(await controllerToken(cp, SYSTEM_NS, 'stevedore-controller', [NS])),
    namespace: NS,
    metricsAddr: '127.0.0.1:0',
    metricsAuth: true,
    processMetrics: false,
    log: rootLogger.child({ test: 'metrics-auth' }, { level: 'error' }),
  });
  stop = new AbortController();
  await manager.start();
  running = manager.run(stop.signal);
});

afterAll(async () => {
  stop?.abort();
  await running;
  await cp?.stop();
});

const get = (path: string, token?: string) =>
  fetch(`http://${manager.healthAddress}${path}`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });

describe('/metrics behind TokenReview and SubjectAccessReview', () => {
  it('refuses a scrape without a token (401)', async () => {
    const res = await get('/metrics');
    expect(res.status).toBe(401);
    expect(await res.text()).not.toContain('stevedore_');
  });

  it('refuses a token the API server does not authenticate (401)', async () => {
    expect((await get('/metrics', 'not-a-token')).status).toBe(401);
  });

  it('refuses a valid identity without get on /metrics, such as a tenant (403)', async () => {
    const res = await get('/metrics', tenantToken);
    expect(res.status).toBe(403);
    expect(await res.text()).not.toContain('stevedore_');
  });

  it('serves a scraper allowed get on /metrics', async () => {
    const res = await get('/metrics', scraperToken);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('stevedore_controller_');
  });

  it('keeps the probes open for the kubelet', async () => {
    expect((await get('/healthz')).status).toBe(200);
    expect([200, 503]).toContain((await get('/readyz')).status);
  });
});
