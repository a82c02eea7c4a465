/**
 * HEAD requests keep their connection. undici closes the connection after every HEAD unless told
 * otherwise, which made each tag a sync checks, and each blob a copy checks, cost a new TCP (and
 * TLS) connection on both ends. A counting TCP relay in front of a real registry counts connections:
 * a count, not a timing, so load on the machine cannot flake it.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headBlob } from '../../src/registry/blobs.js';
import { RegistryClient } from '../../src/registry/client.js';
import { headManifest } from '../../src/registry/manifests.js';
import { copyReference } from '../../src/copy/copy.js';
import { parseImageName } from '../../src/transports/index.js';
import { makeRandomImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';

const temps = new TempDirs();
let reg: TestRegistry;
let relay: Server;
let relayHost: string;
let connections = 0;
const sockets = new Set<Socket>();
let image: FixtureImage;

beforeAll(async () => {
  reg = await startRegistry({ name: 'reg-keepalive' });
  const [host, port] = [reg.host.split(':')[0]!, Number(reg.host.split(':')[1])];
  relay = createServer((client) => {
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
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  relayHost = `127.0.0.1:${(relay.address() as { port: number }).port}`;
  image = await makeRandomImage({ layers: 2, layerSize: 8 * 1024, layoutDir: await temps.make('img') });
  await copyReference(parseImageName(image.ociRef), parseImageName(`docker://${reg.host}/ka/app:1`));
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => relay?.close(r));
  await reg?.stop();
  await temps.cleanup();
});

describe('HEAD requests reuse their connection', () => {
  it('20 manifest HEADs and 20 blob HEADs, one after another, go over one connection', async () => {
    const client = new RegistryClient({ registry: relayHost, maxConnections: 1 });
    try {
      connections = 0;
      for (let i = 0; i < 20; i++) {
        expect((await headManifest(client, 'ka/app', '1'))?.digest).toBe(image.manifest.digest);
        expect(await headBlob(client, 'ka/app', image.layers[0]!.digest)).toBe(image.layers[0]!.size);
      }
      // The HTTPS probe (a loopback host is asked HTTPS first; this plain-HTTP registry fails the
      // handshake), then the /v2/ ping and all 40 HEADs: one connection (when each HEAD closed it, this was 41).
      expect(connections).toBe(2);
    } finally {
      await client.close();
    }
  });
});
