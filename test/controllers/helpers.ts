/** Shared set-up for controller tests: RBAC from config/rbac, Secrets, ImageMirrors, polling. */
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { API_VERSION, GROUP, VERSION } from '../../src/k8s/api/common.js';
import type { ImageMirror } from '../../src/k8s/api/imagemirror.js';
import type { ControlPlane } from '../../hack/lib/harness/controlplane.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export async function ok(cp: ControlPlane, method: string, path: string, body?: unknown, contentType = 'application/json') {
  const res = await cp.request(method, path, {
    headers: { 'content-type': contentType },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${res.body}`);
  return res.json;
}

const rbacDoc = <T>(file: string): T => parseYaml(readFileSync(join(ROOT, 'config', 'rbac', file), 'utf8')) as T;

async function createOnce(cp: ControlPlane, path: string, body: unknown): Promise<void> {
  await ok(cp, 'POST', path, body).catch((e: Error) => {
    if (!/AlreadyExists|409/.test(e.message)) throw e;
  });
}

/**
 * The controller's identity as the chart installs it: config/rbac/role.yaml bound cluster-wide,
 * leader-election-role.yaml in its own namespace, and tenant-role.yaml bound in each namespace it
 * serves (`tenantNamespaces`, the chart's opt-in list). Returns a token for the ServiceAccount.
 */
export async function controllerToken(cp: ControlPlane, namespace: string, sa: string, tenantNamespaces: readonly string[] = []): Promise<string> {
  const RBAC = '/apis/rbac.authorization.k8s.io/v1';
  const role = rbacDoc<{ metadata: { name: string } }>('role.yaml');
  const tenant = rbacDoc<{ metadata: { name: string } }>('tenant-role.yaml');
  const leases = rbacDoc<{ metadata: { name: string } }>('leader-election-role.yaml');
  await createOnce(cp, `${RBAC}/clusterroles`, role);
  await createOnce(cp, `${RBAC}/clusterroles`, tenant);
  const token = await cp.serviceAccountToken(namespace, sa);
  const subjects = [{ kind: 'ServiceAccount', name: sa, namespace }];
  await createOnce(cp, `${RBAC}/clusterrolebindings`, {
    metadata: { name: `${role.metadata.name}-${namespace}-${sa}` },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata.name },
    subjects,
  });
  await createOnce(cp, `${RBAC}/namespaces/${namespace}/roles`, leases);
  await createOnce(cp, `${RBAC}/namespaces/${namespace}/rolebindings`, {
    metadata: { name: `${leases.metadata.name}-${sa}` },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: leases.metadata.name },
    subjects,
  });
  for (const ns of tenantNamespaces) {
    await createOnce(cp, `${RBAC}/namespaces/${ns}/rolebindings`, {
      metadata: { name: `${tenant.metadata.name}-${namespace}-${sa}` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: tenant.metadata.name },
      subjects,
    });
  }
  return token;
}

export function dockerConfigSecret(name: string, registry: string, username: string, password: string) {
  const auth = Buffer.from(`${username}:${password}`).toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': Buffer.from(JSON.stringify({ auths: { [registry]: { auth } } })).toString('base64') },
  };
}

export const mirrorsPath = (ns: string, name?: string, sub?: string) =>
  `/apis/${GROUP}/${VERSION}/namespaces/${ns}/imagemirrors${name ? `/${name}` : ''}${sub ? `/${sub}` : ''}`;

export function createMirror(cp: ControlPlane, ns: string, name: string, spec: ImageMirror['spec']) {
  return ok(cp, 'POST', mirrorsPath(ns), { apiVersion: API_VERSION, kind: 'ImageMirror', metadata: { name }, spec }) as Promise<ImageMirror>;
}

export function patchMirror(cp: ControlPlane, ns: string, name: string, patch: object) {
  return ok(cp, 'PATCH', mirrorsPath(ns, name), patch, 'application/merge-patch+json') as Promise<ImageMirror>;
}

export async function getMirror(cp: ControlPlane, ns: string, name: string): Promise<ImageMirror | undefined> {
  const res = await cp.request('GET', mirrorsPath(ns, name));
  if (res.status === 404) return undefined;
  if (res.status >= 300) throw new Error(`GET ${name}: ${res.status} ${res.body}`);
  return res.json as ImageMirror;
}

export const ready = (m: ImageMirror | undefined) => m?.status?.conditions?.find((c) => c.type === 'Ready');

/** Polls until the predicate holds; fails with the last value seen. */
export async function waitFor<T>(what: string, get: () => Promise<T>, pred: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await get();
    if (pred(last)) return last;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last, null, 1)?.slice(0, 3000)}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** The digest a registry serves for repo:tag (HEAD), or undefined when it has none. */
export async function registryDigest(url: string, repo: string, tag: string): Promise<string | undefined> {
  const res = await fetch(`${url}/v2/${repo}/manifests/${tag}`, {
    method: 'HEAD',
    headers: {
      accept: [
        'application/vnd.oci.image.manifest.v1+json',
        'application/vnd.oci.image.index.v1+json',
        'application/vnd.docker.distribution.manifest.v2+json',
        'application/vnd.docker.distribution.manifest.list.v2+json',
      ].join(', '),
    },
  });
  return res.status === 200 ? (res.headers.get('docker-content-digest') ?? undefined) : undefined;
}

export async function scrape(addr: string): Promise<string> {
  return (await fetch(`http://${addr}/metrics`)).text();
}

export function metricValue(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(' ').pop()) : 0;
}
