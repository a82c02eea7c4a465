/**
 * Sources and destinations opened with a client pool in their context (`TransportContext.clients`,
 * as sync opens hundreds) share its registry clients: one connection and one ping for all of them,
 * and closing one of them leaves the pooled client to the others. A counting TCP relay in front of a
 * real registry counts connections: a count, not a timing, so load on the machine cannot flake it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { DockerReference, RegistryClients } from '../../src/transports/docker.js';
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
  reg = await startRegistry({ name: 'reg-pool' });
  relay = await startCountingRelay(reg.host);
  image = await makeRandomImage({ layers: 1, layerSize: 4 * 1024, layoutDir: await temps.make('img') });
  await copyReference(parseImageName(image.ociRef), parseImageName(`docker://${reg.host}/pool/app:1`));
});

afterAll(async () => {
  await relay?.stop();
  await reg?.stop();
  await temps.cleanup();
});

describe('a client pool in the transport context', () => {
  it('20 sources and 20 destinations opened and closed one after another share one connection', async () => {
    const pool = new RegistryClients();
    try {
      relay.reset();
      const ref = new DockerReference({ registry: relay.host, repository: 'pool/app', tag: '1' });
      for (let i = 0; i < 20; i++) {
        for (const end of [await ref.newSource({ clients: pool }), await ref.newDestination({ clients: pool })]) {
          // Closing a source or destination must not close the pooled client the next one uses.
          try {
            expect(await end.currentDigest?.()).toBe(image.manifest.digest);
          } finally {
            await end.close();
          }
        }
      }
      // The HTTPS probe (a loopback host is asked HTTPS first; this plain-HTTP registry fails the
      // handshake), then the /v2/ ping and the 40 HEADs over the client's connections (its ping may
      // open a second one); a client each would be two connections per source or destination: 80.
      expect(relay.connections).toBeLessThanOrEqual(3);
    } finally {
      await pool.close();
    }
  });

  it('hands out one client per registry and settings, another for other credentials or TLS settings', () => {
    const pool = new RegistryClients();
    const a = { registry: 'registry.example:5000', repository: 'team/app' };
    const b = { registry: 'registry.example:5000', repository: 'team/other' };
    const ctx = { tlsVerify: true, credentials: { username: 'u', password: 'p' } };
    expect(pool.client(a, ctx)).toBe(pool.client(b, { ...ctx }));
    expect(pool.client(a, ctx)).not.toBe(pool.client(a, { ...ctx, credentials: { username: 'v', password: 'p' } }));
    expect(pool.client(a, ctx)).not.toBe(pool.client(a, { ...ctx, tlsVerify: false }));
    expect(pool.client(a, ctx)).not.toBe(pool.client({ ...a, registry: 'other.example' }, ctx));
  });
});
