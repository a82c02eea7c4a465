/**
 * A tenant as the attack tests play one: a ServiceAccount bound to a namespaced Role that lets it
 * manage Stevedore objects and its own Secrets in one namespace, read Events and Pods there, and
 * nothing else (in particular it may not create Pods). Requests go with its bearer token.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import type { ControlPlane, RawResponse } from '../../hack/lib/harness/controlplane.js';

const RBAC = '/apis/rbac.authorization.k8s.io/v1';

async function admin(cp: ControlPlane, path: string, body: unknown): Promise<void> {
  const res = await cp.request('POST', path, { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (res.status >= 300 && res.status !== 409) throw new Error(`POST ${path}: ${res.status} ${res.body}`);
}

/** Creates the tenant's Role and ServiceAccount in `namespace` (which must exist); returns its token. */
export async function tenantSetup(cp: ControlPlane, namespace: string, name: string): Promise<string> {
  await admin(cp, `${RBAC}/namespaces/${namespace}/roles`, {
    metadata: { name },
    rules: [
      {
        apiGroups: ['stevedore.dev'],
        resources: ['imagemirrors', 'imagebuilds', 'containerruns'],
        verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
      },
      { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'create', 'update', 'delete'] },
      { apiGroups: [''], resources: ['pods', 'pods/log'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['get', 'list', 'watch'] },
    ],
  });
  const token = await cp.serviceAccountToken(namespace, name);
  await admin(cp, `${RBAC}/namespaces/${namespace}/rolebindings`, {
    metadata: { name },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
    subjects: [{ kind: 'ServiceAccount', name, namespace }],
  });
  // The API server's RBAC cache learns the new binding a moment later: wait until it applies.
  for (let i = 0; ; i++) {
    const res = await tenantRequest(cp, token, 'GET', `/api/v1/namespaces/${namespace}/secrets?limit=1`);
    if (res.status === 200) break;
    if (i >= 100) throw new Error(`tenant ${namespace}/${name}: RBAC not in effect after 10 s (${res.status} ${res.body})`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return token;
}

/** One HTTPS request to the API server with a bearer token; never throws on an HTTP status. */
export function tenantRequest(
  cp: ControlPlane,
  token: string,
  method: string,
  path: string,
  body?: unknown,
  contentType = 'application/json',
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, cp.server),
      {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': contentType }) },
        ca: readFileSync(join(cp.dir, 'ca.crt')),
        timeout: 10_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: text, json });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
