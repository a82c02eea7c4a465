/**
 * What the controller benchmark (hack/bench/controller.sh) showed the runtime needs at 1000
 * objects: new keys are not held back by the retry rate limit, and the API client reuses its
 * TLS connections instead of paying a handshake per request, and a reconciler can read the
 * informer's copy of its object instead of asking the API server again.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { KubeClient } from '../../src/k8s/runtime/client.js';
import { Controller, type ReconcileRequest } from '../../src/k8s/runtime/controller.js';
import { ControllerMetrics } from '../../src/k8s/runtime/metrics.js';
import { WorkQueue } from '../../src/k8s/runtime/queue.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';

const exec = promisify(execFile);

describe('work queue at scale', () => {
  it('hands out many new keys at once: the overall rate limit applies to retries only', async () => {
    const q = new WorkQueue({ qps: 10, burst: 5 });
    for (let i = 0; i < 300; i++) q.add(`ns/k${i}`);
    const t0 = Date.now();
    for (let i = 0; i < 300; i++) expect(await q.get()).toBe(`ns/k${i}`);
    // 300 keys at 10/s after a burst of 5 would take ~30 s (the bound is loose for a loaded machine).
    expect(Date.now() - t0).toBeLessThan(10_000);
    q.shutDown();
  });

  it('spaces retries of many keys by the overall bucket once its burst is spent', () => {
    const q = new WorkQueue({ qps: 10, burst: 2, backoff: { baseMs: 1, maxMs: 1000 }, requeueJitter: 0 });
    const delays = ['a', 'b', 'c', 'd', 'e'].map((k) => q.addRateLimited(`ns/${k}`));
    // First failures of five keys: 1 ms of per-key backoff each, but only two tokens, then 10/s.
    expect(delays.slice(0, 2)).toEqual([1, 1]);
    expect(delays[2]).toBeGreaterThanOrEqual(90);
    expect(delays[3]).toBeGreaterThanOrEqual(190);
    expect(delays[4]).toBeGreaterThanOrEqual(290);
    expect(delays[4]).toBeLessThanOrEqual(300);
    q.shutDown();
  });
});

const THING = { metadata: { name: 'a', namespace: 'ns', resourceVersion: '7', generation: 3 }, spec: { size: 5 } };

describe('API client connections', () => {
  const dirs = new TempDirs();
  let server: Server;
  let connections = 0;
  let kc: KubeConfig;

  beforeAll(async () => {
    const dir = await dirs.make('kubeclient');
    await exec(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        'tls.key',
        '-out',
        'tls.crt',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { cwd: dir },
    );
    const [cert, key] = await Promise.all([readFile(join(dir, 'tls.crt')), readFile(join(dir, 'tls.key'))]);
    const served = new WeakMap<object, number>();
    server = createServer({ cert, key }, (req, res) => {
      const n = (served.get(req.socket) ?? 0) + 1;
      served.set(req.socket, n);
      // A server that dropped an idle kept-alive connection: the next request on it gets a reset.
      if (req.url?.startsWith('/drop-second') && n === 2) {
        req.socket.destroy();
        return;
      }
      res.setHeader('content-type', 'application/json');
      if (req.url?.startsWith('/apis/example.dev/v1/things?') && req.url.includes('watch=1')) {
        res.write('{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"8"}}}\n'); // then stays open
        return;
      }
      if (req.url?.startsWith('/apis/example.dev/v1/things?')) {
        res.end(JSON.stringify({ metadata: { resourceVersion: '7' }, items: [THING] }));
        return;
      }
      res.end(JSON.stringify({ kind: 'Status', path: req.url, auth: req.headers.authorization }));
    });
    server.on('secureConnection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `https://127.0.0.1:${port}`, caData: cert.toString('base64') }],
      users: [{ name: 'u', token: 'secret-token' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await dirs.cleanup();
  });

  it('reuses one TLS connection for sequential requests and still sends the credentials each time', async () => {
    const client = new KubeClient(kc);
    connections = 0;
    for (let i = 0; i < 20; i++) {
      const res = await client.get<{ path: string; auth: string }>(`/api/v1/namespaces/n${i}`);
      expect(res).toEqual({ kind: 'Status', path: `/api/v1/namespaces/n${i}`, auth: 'Bearer secret-token' });
    }
    expect(connections).toBe(1);
    client.close();
  });

  it('sends again, once, when a kept-alive connection was closed by the server', async () => {
    const client = new KubeClient(kc);
    connections = 0;
    expect(await client.get('/drop-second/1')).toMatchObject({ path: '/drop-second/1' });
    expect(await client.patch('/drop-second/2', { a: 1 })).toMatchObject({ path: '/drop-second/2' });
    expect(connections).toBe(2);
    client.close();
  });

  it('opens connections only as far as requests run in parallel', async () => {
    const client = new KubeClient(kc);
    connections = 0;
    for (let round = 0; round < 5; round++) {
      await Promise.all(Array.from({ length: 4 }, (_, i) => client.get(`/api/v1/namespaces/r${round}-${i}`)));
    }
    expect(connections).toBeLessThanOrEqual(4);
    client.close();
  });

  it("hands the reconciler the informer's cached copy of the object", async () => {
    const client = new KubeClient(kc);
    const seen: ReconcileRequest<typeof THING>[] = [];
    const stop = new AbortController();
    const controller = new Controller<typeof THING>(
      client,
      {
        name: 'things',
        resource: { group: 'example.dev', version: 'v1', plural: 'things' },
        async reconcile(req) {
          seen.push(req);
          stop.abort();
          return {};
        },
      },
      { metrics: new ControllerMetrics(), log: pino({ level: 'silent' }) },
    );
    await controller.run(stop.signal);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ namespace: 'ns', name: 'a', cached: THING });
    client.close();
  });
});
