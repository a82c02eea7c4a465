/**
 * The scheme probe of an insecure (here: loopback) registry sends its HTTP probe at the same time
 * as its HTTPS probe, so a plain-HTTP registry costs one round trip instead of a failed TLS
 * handshake followed by a second round trip (a sync pings two registries before its first HEAD).
 * HTTPS still wins whenever it answers (test/registry/tls.test.ts). A relay in front of a real
 * registry holds every TLS ClientHello unanswered until a plain HTTP request has come through (or
 * 5 s have passed), and records which came first: an order of events, not a timing.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../src/registry/client.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';

let reg: TestRegistry;
let relay: Server;
let relayHost: string;
const sockets = new Set<Socket>();
/** Held TLS hellos, released (closed, as a plain server would) when a plain request arrives. */
const held = new Set<Socket>();
let plainWhileTlsHeld = false;
let tlsHellos = 0;

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
});

afterAll(async () => {
  release();
  for (const s of sockets) s.destroy();
  await new Promise((r) => relay?.close(r));
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
});
