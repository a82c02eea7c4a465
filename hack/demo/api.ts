// `make demo` helper: a tiny client for the demo's control plane (admin client certificate from the
// kubeconfig hack/demo/controlplane.ts writes), so the demo needs neither kubectl nor a client library.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { parse } from 'yaml';

export type Call = (method: string, path: string, headers?: Record<string, string>, body?: string) => Promise<{ status: number; json: any }>;

interface Kubeconfig {
  clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
  users: { user: { 'client-certificate-data': string; 'client-key-data': string } }[];
}

export function api(kubeconfig: string) {
  const kc = parse(readFileSync(kubeconfig, 'utf8')) as Kubeconfig;
  const cluster = kc.clusters[0]!.cluster;
  const user = kc.users[0]!.user;
  const b = (s: string) => Buffer.from(s, 'base64');
  return (method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; json: any }> =>
    new Promise<{ status: number; json: any }>((resolve, reject) => {
      const req = request(
        new URL(path, cluster.server),
        {
          method,
          headers,
          ca: b(cluster['certificate-authority-data']),
          cert: b(user['client-certificate-data']),
          key: b(user['client-key-data']),
          timeout: 10_000,
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => {
            let json: any;
            try {
              json = JSON.parse(text);
            } catch {
              json = { message: text };
            }
            resolve({ status: res.statusCode ?? 0, json });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end(body);
    });
}
