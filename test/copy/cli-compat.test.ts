/**
 * `stevedore copy` and `stevedore sync` with skopeo's flags (issue 16, "drop-in for skopeo users"),
 * run as the built CLI against real registries (and a fault proxy where a fault is needed).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { parseImageName } from '../../src/transports/index.js';
import { makeRandomImage, type FixtureImage } from '../fixtures/images.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { TempDirs } from '../harness/tmp.js';
import { cleanupCli, stevedore } from '../cli/stevedore.js';

const temps = new TempDirs();
let reg: TestRegistry;
let proxy: FaultProxy;
let image: FixtureImage;

beforeAll(async () => {
  reg = await startRegistry({ name: 'cli-compat' });
  proxy = await startFaultProxy(reg.url);
  image = await makeRandomImage({ layers: 1, layerSize: 4096, layoutDir: await temps.make('img'), ref: 'x' });
  await copyReference(parseImageName(image.ociRef), parseImageName(`docker://${reg.host}/src/app:1`));
});

afterAll(async () => {
  await proxy?.stop();
  await reg?.stop();
  await temps.cleanup();
  await cleanupCli();
});

describe('--retry-times and --retry-delay (skopeo names)', () => {
  it('copy retries as many times as asked, with the fixed delay given', async () => {
    proxy.addFault({ method: 'GET', pathRegex: '/src/app/manifests/1', kind: 'status', status: 503, times: 3 });
    const few = await stevedore(['copy', '-q', '--retry-times', '1', '--retry-delay', '10ms', `docker://${proxy.host}/src/app:1`, `docker://${reg.host}/dst/app:1`]);
    expect(few.code).not.toBe(0);
    expect(few.stderr).toMatch(/503/);
    expect(proxy.hits('/src/app/manifests/1').filter((h) => h.method === 'GET').map((h) => h.status)).toEqual([503, 503]);
    proxy.clearHits();
    const started = Date.now();
    const enough = await stevedore(['copy', '-q', '--retry-times', '3', '--retry-delay', '200ms', `docker://${proxy.host}/src/app:1`, `docker://${reg.host}/dst/app:1`]);
    expect(enough.code, enough.stderr).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(proxy.hits('/src/app/manifests/1').filter((h) => h.method === 'GET').map((h) => h.status)).toEqual([503, 200]);
    proxy.clearFaults();
  });

  it('sync takes the same flags; a bad value is refused naming the flag', async () => {
    proxy.addFault({ method: 'HEAD', pathRegex: '/src/app/manifests/1', kind: 'status', status: 503, times: 1 });
    const ok = await stevedore(['sync', '--src', 'docker', '--dest', 'docker', '--retry-times', '2', '--retry-delay', '1ms', `${proxy.host}/src/app:1`, `${reg.host}/synced`]);
    expect(ok.code, ok.stderr).toBe(0);
    const bad = await stevedore(['sync', '--src', 'docker', '--dest', 'docker', '--retry-delay', 'soon', `${reg.host}/src/app:1`, `${reg.host}/synced`]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--retry-delay: "soon" is not a duration');
  });
});
