/**
 * The probe and metrics endpoint: /healthz (alive), /readyz (caches synced), /metrics (Prometheus).
 * With `authorizeMetrics`, /metrics answers only callers it lets in (401 without a valid token, 403
 * without the right); the probes stay open, as the kubelet calls them without credentials and
 * they tell nothing but "ok".
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface HealthServer {
  /** `host:port` actually bound (port 0 picks a free one). */
  address: string;
  close(): Promise<void>;
}

/** Parses `:8080`, `0.0.0.0:8080` or `127.0.0.1:0`. */
export function parseAddr(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const host = i <= 0 ? '0.0.0.0' : addr.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(i < 0 ? addr : addr.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid address "${addr}": expected [host]:port`);
  return { host, port };
}

export interface HealthChecks {
  ready: () => boolean;
  healthy?: () => boolean;
  /** Decides whether a /metrics request (by its Authorization header) is served. */
  authorizeMetrics?: (authorization: string | undefined) => Promise<'allowed' | 'unauthenticated' | 'forbidden'>;
}

export async function startHealthServer(addr: string, registry: Registry, checks: HealthChecks): Promise<HealthServer> {
  const { host, port } = parseAddr(addr);
  const serveMetrics = (res: import('node:http').ServerResponse) =>
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500).end(err.message),
    );
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics' && checks.authorizeMetrics) {
      checks.authorizeMetrics(req.headers.authorization).then(
        (verdict) => {
          if (verdict === 'allowed') return serveMetrics(res);
          if (verdict === 'unauthenticated') res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' }).end('Unauthorized');
          else res.writeHead(403, { 'content-type': 'text/plain' }).end('Forbidden');
          return undefined;
        },
        // The API server could not be asked: not the caller's fault, and no metrics either.
        () => res.writeHead(503, { 'content-type': 'text/plain' }).end('authorization unavailable'),
      );
      return;
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message),
      );
      return;
    }
    if (path === '/healthz' || path === '/livez') {
      const ok = checks.healthy?.() ?? true;
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok' : 'unhealthy');
      return;
    }
    if (path === '/readyz') {
      const ok = checks.ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok' : 'not ready');
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  return {
    address: `${a.address}:${a.port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
