/**
 * The direct socket pipe that carries registry-to-registry blobs (src/registry/blob-pipe.ts) in
 * the cases the fault suite (test/registry/faults.test.ts, run over both blob paths) does not
 * reach: TLS on both ends, bearer-token registries, and a source that redirects blob GETs
 * elsewhere. (Answers it does not handle, such as a 429, go to the stream path: faults.test.ts.) Real
 * docker-registry processes; a recording relay (TCP or TLS) in front of them tells which path
 * a blob took: the pipe asks with `connection: close`, undici never does.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { connect, createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { copyReference, type CopyReferenceOptions } from '../../src/copy/copy.js';
import { RegistryClient } from '../../src/registry/client.js';
import { headManifest } from '../../src/registry/manifests.js';
import { parseImageName } from '../../src/transports/index.js';
import { makeRandomImage, type FixtureImage } from '../fixtures/images.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { TempDirs } from '../harness/tmp.js';

const temps = new TempDirs();
const servers: Server[] = [];
const sockets = new Set<Socket>();

interface Relay {
  host: string;
  /** The first line and headers of each request seen, lowercased. */
  heads: string[];
  /** Connections open now, and the most open at once. */
  open: number;
  peak: number;
}

/** A relay to `target` (host:port) that records request heads; TLS-terminating when given a key and certificate. */
async function startRelay(target: string, tls?: { key: Buffer; cert: Buffer }): Promise<Relay> {
  const [host, port] = [target.split(':')[0]!, Number(target.split(':')[1])];
  const relay: Relay = { host: '', heads: [], open: 0, peak: 0 };
  const onClient = (client: Socket) => {
    relay.peak = Math.max(relay.peak, ++relay.open);
    client.once('close', () => relay.open--);
    const upstream = connect({ host, port });
    let seen = '';
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.on('data', (chunk: Buffer) => {
      // Request heads only: enough of each connection's start to read its first request.
      if (seen.length < 64 * 1024) {
        seen += chunk.toString('latin1');
        let end: number;
        while ((end = seen.indexOf('\r\n\r\n')) >= 0) {
          const head = seen.slice(0, end).toLowerCase();
          if (/^[a-z]+ \/v2\//.test(head)) relay.heads.push(head);
          seen = seen.slice(end + 4).replace(/^[^A-Z]*/, '');
        }
      }
    });
    client.pipe(upstream);
    if (!tls) upstream.pipe(client);
    else {
      // The registry behind this relay speaks plain HTTP and builds absolute upload Locations
      // from its own scheme; a TLS front end must turn them into https ones (as a reverse proxy
      // setting X-Forwarded-Proto would).
      upstream.on('data', (chunk: Buffer) => {
        client.write(chunk.includes('\r\nLocation: http://') ? Buffer.from(chunk.toString('latin1').replaceAll('\r\nLocation: http://', '\r\nLocation: https://'), 'latin1') : chunk);
      });
    }
    client.on('close', () => upstream.destroy());
    // end, not destroy: what the registry sent last must still reach the client.
    upstream.on('close', () => client.end());
  };
  const server = tls ? createTlsServer({ key: tls.key, cert: tls.cert }, onClient) : createTcpServer(onClient);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  relay.host = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return relay;
}

const pipedGets = (relay: Relay, digest: string) => relay.heads.filter((h) => h.startsWith(`get `) && h.includes(`/blobs/${digest}`) && /\r\nconnection: close/.test(h));
const pipedPuts = (relay: Relay) => relay.heads.filter((h) => h.startsWith('put ') && h.includes('/blobs/uploads/') && /\r\nconnection: close/.test(h));

/** Every blob through the pipe, the small config too (by default small blobs take the stream path). */
async function copy(src: string, dest: string, opts: CopyReferenceOptions = {}) {
  return copyReference(parseImageName(src), parseImageName(dest), { directPipeMinBytes: 0, ...opts });
}

let a: TestRegistry;
let b: TestRegistry;
let image: FixtureImage;
let cert: { key: Buffer; cert: Buffer };

beforeAll(async () => {
  [a, b] = await Promise.all([startRegistry({ name: 'pipe-a' }), startRegistry({ name: 'pipe-b' })]);
  image = await makeRandomImage({ layers: 2, layerSize: 3 * 1024 * 1024 + 17, layoutDir: await temps.make('img') });
  await copy(image.ociRef, `docker://${a.host}/pipe/app:1`);
  const dir = await temps.make('cert');
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
  ]);
  cert = { key: await readFile(join(dir, 'key.pem')), cert: await readFile(join(dir, 'cert.pem')) };
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  await Promise.all([a?.stop(), b?.stop()]);
  await temps.cleanup();
});

describe('registry-to-registry blobs over the direct pipe', () => {
  it('copies over TLS on both ends, every layer through the pipe, with the digest unchanged', async () => {
    const [srcTls, destTls] = await Promise.all([startRelay(a.host, cert), startRelay(b.host, cert)]);
    const ctx = { tlsVerify: false };
    const result = await copy(`docker://${srcTls.host}/pipe/app:1`, `docker://${destTls.host}/tls/app:1`, { srcContext: ctx, destContext: ctx });
    expect(result.digest).toBe(image.manifest.digest);
    expect(result.blobsCopied).toBe(3);
    for (const layer of image.layers) expect(pipedGets(srcTls, layer.digest)).toHaveLength(1);
    expect(pipedPuts(destTls)).toHaveLength(3);
    const client = new RegistryClient({ registry: b.host });
    expect((await headManifest(client, 'tls/app', '1'))?.digest).toBe(image.manifest.digest);
    await client.close();
  });

  it('copies between bearer-token registries, the pipe sending the tokens the client got', async () => {
    const [ta, tb] = await Promise.all([startRegistry({ name: 'pipe-ta', auth: 'token' }), startRegistry({ name: 'pipe-tb', auth: 'token' })]);
    try {
      const credsA = { credentials: { username: ta.username!, password: ta.password! } };
      const credsB = { credentials: { username: tb.username!, password: tb.password! } };
      await copy(`docker://${a.host}/pipe/app:1`, `docker://${ta.host}/team/app:1`, { destContext: credsA });
      const [ra, rb] = await Promise.all([startRelay(ta.host), startRelay(tb.host)]);
      const result = await copy(`docker://${ra.host}/team/app:1`, `docker://${rb.host}/team/app:1`, { srcContext: credsA, destContext: credsB });
      expect(result.digest).toBe(image.manifest.digest);
      for (const layer of image.layers) {
        const gets = pipedGets(ra, layer.digest);
        expect(gets).toHaveLength(1);
        expect(gets[0]).toMatch(/\r\nauthorization: bearer /);
      }
      expect(pipedPuts(rb).every((h) => /\r\nauthorization: bearer /.test(h))).toBe(true);
      expect(pipedPuts(rb)).toHaveLength(3);
    } finally {
      await Promise.all([ta.stop(), tb.stop()]);
    }
  });

  it('by default leaves blobs under 1 MiB (the config) to the stream path and pipes the layers', async () => {
    const [ra, rb] = await Promise.all([startRelay(a.host), startRelay(b.host)]);
    const result = await copyReference(parseImageName(`docker://${ra.host}/pipe/app:1`), parseImageName(`docker://${rb.host}/sized/app:1`));
    expect(result.blobsCopied).toBe(3);
    expect(pipedPuts(rb)).toHaveLength(2);
    for (const layer of image.layers) expect(pipedGets(ra, layer.digest)).toHaveLength(1);
    expect(ra.heads.filter((h) => h.startsWith('get ') && h.includes(`/blobs/${image.configDescriptor.digest}`))).toHaveLength(1);
    expect(pipedGets(ra, image.configDescriptor.digest)).toHaveLength(0);
  });

  it('keeps within the per-host connection limit (16: 8 pooled, 8 for pipes) with 12 blobs in flight', async () => {
    const many = await makeRandomImage({ layers: 11, layerSize: 1024 * 1024, layoutDir: await temps.make('many') });
    await copy(many.ociRef, `docker://${a.host}/many/app:1`);
    const [ra, rb] = await Promise.all([startRelay(a.host), startRelay(b.host)]);
    const result = await copy(`docker://${ra.host}/many/app:1`, `docker://${rb.host}/many/app:1`, { jobs: 12 });
    expect(result.blobsCopied).toBe(12);
    // Some blobs went through the pipes, and never more connections at once than the limit.
    expect(pipedPuts(rb).length).toBeGreaterThan(0);
    expect(ra.peak).toBeLessThanOrEqual(16);
    expect(rb.peak).toBeLessThanOrEqual(16);
  });

  it('a client hands out pipe connections up to half its limit and never waits for one', () => {
    const client = new RegistryClient({ registry: '127.0.0.1:1', maxConnections: 4 });
    const first = client.tryAcquirePipeSlot();
    const second = client.tryAcquirePipeSlot();
    expect(first).toBeTypeOf('function');
    expect(second).toBeTypeOf('function');
    expect(client.tryAcquirePipeSlot()).toBeUndefined();
    first!();
    first!(); // a second release of the same slot gives nothing back
    const third = client.tryAcquirePipeSlot();
    expect(third).toBeTypeOf('function');
    expect(client.tryAcquirePipeSlot()).toBeUndefined();
    void client.close();
  });

  describe('source answers', () => {
    let proxy: FaultProxy;
    beforeAll(async () => {
      proxy = await startFaultProxy(a.url);
    });
    afterEach(() => {
      proxy.clearFaults();
      proxy.clearHits();
    });
    afterAll(async () => {
      await proxy?.stop();
    });

    it('follows a redirect of a blob GET itself (no second request to the source)', async () => {
      const layer = image.layers[0]!.digest;
      proxy.addFault({ method: 'GET', pathRegex: `/blobs/${layer}`, kind: 'status', status: 307, headers: { Location: `${a.url}/v2/pipe/app/blobs/${layer}` } });
      const result = await copy(`docker://${proxy.host}/pipe/app:1`, `docker://${b.host}/redirected/app:1`);
      expect(result.digest).toBe(image.manifest.digest);
      expect(proxy.hits(`/blobs/${layer}`).map((h) => h.status)).toEqual([307]);
    });
  });
});
