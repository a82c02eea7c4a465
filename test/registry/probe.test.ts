/**
 * The scheme probe of an insecure (here: loopback) registry sends its HTTP probe at the same time
 * as its HTTPS probe, so a plain-HTTP registry costs one round trip instead of a failed TLS
 * handshake followed by a second round trip (a sync pings two registries before its first HEAD).
 * HTTPS still wins whenever it answers (test/registry/tls.test.ts). A relay in front of a real
 * registry holds every TLS ClientHello unanswered until a plain HTTP request has come through (or
 * 5 s have passed), and records which came first: an order of events, not a timing.
 * A ping started ahead (warmUp, as sync does for both registries) and failed is reported to the
 * next caller, not pinged through its retries a second time: a relay that drops every connection
 * counts the attempts.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../src/registry/client.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { sleep } from '../../hack/lib/harness/net.js';

let reg: TestRegistry;
let relay: Server;
let relayHost: string;
const sockets = new Set<Socket>();
/** Held TLS hellos, released (closed, as a plain server would) when a plain request arrives. */
const held = new Set<Socket>();
let plainWhileTlsHeld = false;
let tlsHellos = 0;
/** Accepts and drops every connection: a registry that is down behind a listening port. */
let dropper: Server;
let dropperHost: string;
let dropped = 0;

function release(): void {
  for (const s of held) s.destroy();
  held.clear();
}

beforeAll(async () => {
  reg = await startRegistry({ name: 'reg-probe' });
  const [host, port] = [reg.host.split(':')[0]!, Number(reg.host.split(':')[1])];
  relay = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    client.once('data', (first: Buffer) => {
      if (first[0] === 0x16) {
        // A TLS handshake record: hold it, unanswered.
        tlsHellos++;
        held.add(client);
        setTimeout(release, 5_000).unref();
        return;
      }
      if (held.size > 0) plainWhileTlsHeld = true;
      release();
      const upstream = connect({ host, port });
      sockets.add(upstream);
      upstream.on('close', () => sockets.delete(upstream));
      upstream.on('error', () => undefined);
      upstream.write(first);
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  relayHost = `127.0.0.1:${(relay.address() as { port: number }).port}`;
  dropper = createServer((s) => {
    dropped++;
    s.on('error', () => undefined);
    s.once('data', () => s.destroy());
  });
  await new Promise<void>((r) => dropper.listen(0, '127.0.0.1', r));
  dropperHost = `127.0.0.1:${(dropper.address() as { port: number }).port}`;
});

afterAll(async () => {
  release();
  for (const s of sockets) s.destroy();
  await new Promise((r) => relay?.close(r));
  await new Promise((r) => dropper?.close(r));
  await reg?.stop();
});

describe('scheme probe of a loopback registry', () => {
  it('sends the HTTP probe while the HTTPS probe is still unanswered, and settles on HTTP', async () => {
    const client = new RegistryClient({ registry: relayHost });
    try {
      expect(await client.baseUrl()).toBe(`http://${relayHost}`);
      expect(tlsHellos).toBe(1);
      // Before, the HTTP probe was sent only after the HTTPS one had failed: the relay saw the
      // plain request only once it had let the held handshake go.
      expect(plainWhileTlsHeld).toBe(true);
    } finally {
      await client.close();
    }
  });

  it('a failed warm-up ping goes to the next caller; it is not pinged through its retries again', async () => {
    // One ping: a TLS hello, then three plain attempts (network errors are retried on the last scheme).
    const client = new RegistryClient({ registry: dropperHost, retry: { attempts: 3, fixedDelayMs: 10 } });
    try {
      dropped = 0;
      client.warmUp();
      for (let i = 0; i < 100 && dropped < 4; i++) await sleep(20);
      expect(dropped).toBe(4);
      await sleep(300); // let the failure settle (if it has not, the caller shares the ping: same count)
      await expect(client.baseUrl()).rejects.toMatchObject({ code: 'REGISTRY_UNREACHABLE' });
      expect(dropped).toBe(4);
      // A later call pings again: a failure is not cached.
      await expect(client.baseUrl()).rejects.toMatchObject({ code: 'REGISTRY_UNREACHABLE' });
      expect(dropped).toBe(8);
    } finally {
      await client.close();
    }
  });
});
