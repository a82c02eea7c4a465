/**
 * HEAD requests keep their connection. undici closes the connection after every HEAD unless told
 * otherwise, which made each tag a sync checks, and each blob a copy checks, cost a new TCP (and
 * TLS) connection on both ends. A counting TCP relay in front of a real registry counts connections:
 * a count, not a timing, so load on the machine cannot flake it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headBlob } from '../../src/registry/blobs.js';
import { RegistryClient } from '../../src/registry/client.js';
import { headManifest } from '../../src/registry/manifests.js';
import { copyReference } from '../../src/copy/copy.js';
import { parseImageName } from '../../src/transports/index.js';
import { makeRandomImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { startCountingRelay, type CountingRelay } from '../../hack/lib/harness/net.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';

const temps = new TempDirs();
let reg: TestRegistry;
let relay: CountingRelay;
let image: FixtureImage;

beforeAll(async () => {
  reg = await startRegistry({ name: 'reg-keepalive' });
  relay = await startCountingRelay(reg.host);
  image = await makeRandomImage({ layers: 2, layerSize: 8 * 1024, layoutDir: await temps.make('img') });
  await copyReference(parseImageName(image.ociRef), parseImageName(`docker://${reg.host}/ka/app:1`));
});

afterAll(async () => {
  await relay?.stop();
  await reg?.stop();
  await temps.cleanup();
});

describe('HEAD requests reuse their connection', () => {
  it('20 manifest HEADs and 20 blob HEADs, one after another, go over one connection', async () => {
    const client = new RegistryClient({ registry: relay.host, maxConnections: 1 });
    try {
      relay.reset();
      for (let i = 0; i < 20; i++) {
        expect((await headManifest(client, 'ka/app', '1'))?.digest).toBe(image.manifest.digest);
        expect(await headBlob(client, 'ka/app', image.layers[0]!.digest)).toBe(image.layers[0]!.size);
      }
      // The HTTPS probe (a loopback host is asked HTTPS first; this plain-HTTP registry fails the
      // handshake), then the /v2/ ping and all 40 HEADs: one connection (when each HEAD closed it, this was 41).
      expect(relay.connections).toBe(2);
    } finally {
      await client.close();
    }
  });
});
