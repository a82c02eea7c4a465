/**
 * Loopback networking helpers shared by the harness servers. Everything binds 127.0.0.1 only:
 * CI machines may have other interfaces we must never expose a test registry on.
 */
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { request } from 'node:http';

export const LOOPBACK = '127.0.0.1';

/**
 * Asks the kernel for a free TCP port on 127.0.0.1 by listening on port 0 and closing again.
 * Another process may grab the port before our child binds it, so callers that hand the port to a
 * child process must retry on "address already in use".
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, LOOPBACK, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('listening on port 0 gave no TCP address'));
        return;
      }
      srv.close(() => resolve(addr.port));
    });
  });
}

export interface SimpleResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * One plain HTTP GET with no connection reuse, for readiness probes. Uses node:http rather than
 * fetch so no keep-alive pool outlives the probe and delays process exit.
 */
export function httpGet(url: string, headers: Record<string, string> = {}, timeoutMs = 2000): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', headers, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** The engine's sleep (src/util/sleep.ts), offered here beside freePort for the tests that poll. */
export { sleep } from '../../../src/util/sleep.js';

/**
 * A TCP relay on loopback in front of `target` (`host:port`) that counts the connections opened
 * through it: tests count connections (a count, not a timing, so load cannot flake them).
 */
export interface CountingRelay {
  /** `127.0.0.1:port` to give clients instead of the target. */
  readonly host: string;
  /** Connections opened since start or the last reset(). */
  readonly connections: number;
  reset(): void;
  stop(): Promise<void>;
}

export async function startCountingRelay(target: string): Promise<CountingRelay> {
  const colon = target.lastIndexOf(':');
  const [host, port] = [target.slice(0, colon), Number(target.slice(colon + 1))];
  let connections = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    connections++;
    const upstream = connect({ host, port });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, LOOPBACK, r));
  return {
    host: `${LOOPBACK}:${(server.address() as AddressInfo).port}`,
    get connections() {
      return connections;
    },
    reset() {
      connections = 0;
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
