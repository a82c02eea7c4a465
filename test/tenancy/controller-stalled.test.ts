// Inputs that can never succeed stall the object (Stalled=True, the engine error's code as reason)
// and the controller stops retrying until the spec changes: one mapping (k8s/runtime/reconcile-errors)
// for ImageMirror and ImageBuild. And ImageBuild's scheduling fields: a tenant who may not create
// Pods cannot steer build Pods with nodeSelector/tolerations keys the administrator did not allow,
// nor onto control-plane nodes at all. Every object is created as a tenant bound to a namespaced Role.
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkBuildScheduling } from '../../src/controllers/imagebuild.js';
import { createControllerManager } from '../../src/controllers/setup.js';
import { copyReference } from '../../src/copy/copy.js';
import { API_VERSION, GROUP, VERSION } from '../../src/k8s/api/common.js';
import type { ImageBuild } from '../../src/k8s/api/imagebuild.js';
import type { ImageMirror } from '../../src/k8s/api/imagemirror.js';
import type { Manager } from '../../src/k8s/runtime/manager.js';
import { parseImageName } from '../../src/transports/index.js';
import { makeRandomImage } from '../../hack/lib/harness/images.js';
import { startControlPlane, type ControlPlane } from '../../hack/lib/harness/controlplane.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { controllerToken, mirrorsPath, waitFor } from '../controllers/helpers.js';
import { tenantRequest, tenantSetup } from './tenant.js';

const NS = 'team-s';
const SYSTEM_NS = 'stevedore-system';
const ALLOWED_KEY = 'pool.example.com/builds';
const temps = new TempDirs();
let cp: ControlPlane;
let reg: TestRegistry;
let manager: Manager;
let stop: AbortController;
let running: Promise<void>;
let token: string;
const logLines: string[] = [];

const buildsPath = (name?: string) => `/apis/${GROUP}/${VERSION}/namespaces/${NS}/imagebuilds${name ? `/${name}` : ''}`;
type Obj = ImageMirror | ImageBuild;
const cond = (o: Obj | undefined, type: string) => o?.status?.conditions?.find((c) => c.type === type);

beforeAll(async () => {
  [cp, reg] = await Promise.all([startControlPlane(), startRegistry({ name: 'stall' })]);
  await cp.installCRDs();
  await cp.createNamespace(NS);
  for (const tag of ['1.0.0', '2.0.0']) {
    const img = await makeRandomImage({ layers: 1, layerSize: 8 * 1024, seed: `stall-${tag}`, layoutDir: await temps.make(`img-${tag}`), ref: tag });
    await copyReference(parseImageName(img.ociRef), parseImageName(`docker://${reg.host}/src/app:${tag}`), {});
  }
  token = await tenantSetup(cp, NS, 'tenant');
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logLines.push(String(chunk));
      cb();
    },
  });
  manager = createControllerManager({
    kubeConfig: cp.kubeConfigForToken(await controllerToken(cp, SYSTEM_NS, 'stevedore-controller', [NS])),
    namespace: NS,
    queue: { backoff: { baseMs: 100, maxMs: 1_000, jitter: 0.1 } },
    processMetrics: false,
    buildPods: { image: 'stevedore.test/stevedore:dev' },
    buildPodAllowedSchedulingKeys: [ALLOWED_KEY],
    log: pino({ level: 'info' }, sink),
  });
  stop = new AbortController();
  await manager.start();
  running = manager.run(stop.signal);
});

afterAll(async () => {
  stop?.abort();
  await running;
  await Promise.all([cp?.stop(), reg?.stop()]);
  await temps.cleanup();
});

async function create<T extends Obj>(path: string, kind: string, name: string, spec: T['spec']): Promise<T> {
  const res = await tenantRequest(cp, token, 'POST', path, { apiVersion: API_VERSION, kind, metadata: { name }, spec });
  if (res.status !== 201) throw new Error(`create ${kind} ${name}: ${res.status} ${res.body}`);
  return res.json as T;
}
const get =
  <T extends Obj>(path: string) =>
  async () =>
    (await tenantRequest(cp, token, 'GET', path)).json as T;
const patch = async <T extends Obj>(path: string, body: object) => {
  const res = await tenantRequest(cp, token, 'PATCH', path, body, 'application/merge-patch+json');
  if (res.status !== 200) throw new Error(`patch ${path}: ${res.status} ${res.body}`);
  return res.json as T;
};
/** Reconcile attempts the controller logged for one key (each failed or stalled reconcile logs one line). */
const attempts = (key: string) => logLines.filter((l) => l.includes(`"key":"${key}"`)).length;
/**
 * Waits for the stalled attempt's own log line: the controller logs it after the status patch the
 * test has just seen, so counting at once could miss it and take it later for a retry.
 */
async function stallLogged(key: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!logLines.some((l) => l.includes(`"key":"${key}"`) && l.includes('reconcile stalled'))) {
    if (Date.now() > deadline) throw new Error(`no "reconcile stalled" log line for ${key} within 10 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const stalledAt = (gen: number | undefined, reason: string) => (o: Obj) =>
  cond(o, 'Stalled')?.status === 'True' && cond(o, 'Stalled')?.reason === reason && o.status?.observedGeneration === gen;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function pods(): Promise<
  Array<{ metadata: { name: string; labels?: Record<string, string> }; spec: { nodeSelector?: Record<string, string>; tolerations?: unknown[] } }>
> {
  const res = await tenantRequest(cp, token, 'GET', `/api/v1/namespaces/${NS}/pods`);
  expect(res.status).toBe(200);
  return (res.json as { items: [] }).items;
}

describe('a non-retryable engine error stalls the object until its spec changes', () => {
  it('ImageMirror: an unparsable tags.semver stalls (InvalidSpec), is not retried, and a fixed spec syncs', async () => {
    const created = await create<ImageMirror>(mirrorsPath(NS), 'ImageMirror', 'bad-semver', {
      source: { registry: { repository: `${reg.host}/src/app`, insecure: true } },
      destination: { registry: { repository: `${reg.host}/dst/app`, insecure: true } },
      tags: { semver: '>=1.0.0 <<< nonsense' },
    });
    const m = await waitFor('Stalled', get<ImageMirror>(mirrorsPath(NS, 'bad-semver')), stalledAt(created.metadata.generation, 'InvalidSpec'));
    expect(cond(m, 'Ready')).toMatchObject({ status: 'False', reason: 'InvalidSpec' });
    expect(cond(m, 'Stalled')!.message).toContain('spec.tags.semver');
    await stallLogged(`${NS}/bad-semver`);
    const before = attempts(`${NS}/bad-semver`);
    const rv = m.metadata.resourceVersion;
    await sleep(2_500); // backoff here is 100 ms doubling to 1 s: a retried key would log ~5 more attempts
    expect(attempts(`${NS}/bad-semver`)).toBe(before);
    expect((await get<ImageMirror>(mirrorsPath(NS, 'bad-semver'))()).metadata.resourceVersion).toBe(rv);

    const fixed = await patch<ImageMirror>(mirrorsPath(NS, 'bad-semver'), { spec: { tags: { semver: '>=1.0.0 <2' } } });
    const ok = await waitFor(
      'Ready',
      get<ImageMirror>(mirrorsPath(NS, 'bad-semver')),
      (o) => o.status?.observedGeneration === fixed.metadata.generation && cond(o, 'Ready')?.status === 'True',
    );
    expect(cond(ok, 'Stalled')).toBeUndefined();
    expect(ok.status!.tags!.map((t) => t.tag)).toEqual(['1.0.0']);
  });

  it('ImageBuild: an output image that is no valid reference stalls with INVALID_INPUT before any Pod exists', async () => {
    const created = await create<ImageBuild>(buildsPath(), 'ImageBuild', 'bad-ref', {
      source: { inline: { containerfile: 'FROM scratch\n' } },
      output: { image: `${reg.host}/Team/App:1` },
    });
    const b = await waitFor('Stalled', get<ImageBuild>(buildsPath('bad-ref')), stalledAt(created.metadata.generation, 'INVALID_INPUT'));
    expect(cond(b, 'Stalled')!.message).toMatch(/invalid reference/);
    await stallLogged(`${NS}/bad-ref`);
    const before = attempts(`${NS}/bad-ref`);
    await sleep(2_500);
    expect(attempts(`${NS}/bad-ref`)).toBe(before);
    expect((await pods()).filter((p) => p.metadata.name.startsWith('bad-ref-'))).toEqual([]);
  });
});

describe('ImageBuild scheduling: only keys the administrator allows, never the control plane', () => {
  const spec = (extra: Partial<ImageBuild['spec']>): ImageBuild['spec'] => ({
    source: { inline: { containerfile: 'FROM scratch\n' } },
    output: { image: `${reg.host}/team/app:1` },
    ...extra,
  });

  it.each([
    [
      'host-selector',
      { nodeSelector: { 'kubernetes.io/hostname': 'control-plane-1' } },
      /spec\.nodeSelector names "kubernetes\.io\/hostname", which is not allowed: the administrator allows pool\.example\.com\/builds/,
    ],
    [
      'other-toleration',
      { tolerations: [{ key: 'dedicated', operator: 'Equal' as const, value: 'team-a', effect: 'NoSchedule' as const }] },
      /spec\.tolerations\[0\]\.key names "dedicated"/,
    ],
  ])('%s is refused (Stalled SchedulingNotAllowed) and no Pod is created', async (name, extra, message) => {
    const created = await create<ImageBuild>(buildsPath(), 'ImageBuild', name, spec(extra));
    const b = await waitFor('Stalled', get<ImageBuild>(buildsPath(name)), stalledAt(created.metadata.generation, 'SchedulingNotAllowed'));
    expect(cond(b, 'Stalled')!.message).toMatch(message);
    expect((await pods()).filter((p) => p.metadata.name.startsWith(`${name}-`))).toEqual([]);
  });

  it('control-plane keys and key-less tolerations are refused by the controller too, even when listed (objects stored before the CRD rule)', () => {
    const cp = 'node-role.kubernetes.io/control-plane';
    const base = spec({});
    expect(() => checkBuildScheduling({ ...base, tolerations: [{ key: cp, operator: 'Exists' }] }, [cp])).toThrow(/never run on control-plane nodes/);
    expect(() => checkBuildScheduling({ ...base, nodeSelector: { 'node-role.kubernetes.io/master': '' } }, ['node-role.kubernetes.io/master'])).toThrow(
      /never run on control-plane nodes/,
    );
    expect(() => checkBuildScheduling({ ...base, tolerations: [{ operator: 'Exists' }] }, ['*', ''])).toThrow(/tolerates every taint/);
    expect(() => checkBuildScheduling({ ...base, nodeSelector: { [ALLOWED_KEY]: 'x' } }, [ALLOWED_KEY])).not.toThrow();
  });

  it('an allowed key reaches the build Pod', async () => {
    const created = await create<ImageBuild>(
      buildsPath(),
      'ImageBuild',
      'allowed',
      spec({
        nodeSelector: { [ALLOWED_KEY]: 'yes' },
        tolerations: [{ key: ALLOWED_KEY, operator: 'Exists', effect: 'NoSchedule' }],
      }),
    );
    await waitFor(
      'Building',
      get<ImageBuild>(buildsPath('allowed')),
      (o) => o.status?.observedGeneration === created.metadata.generation && cond(o, 'Reconciling')?.reason === 'Building',
    );
    const pod = (await pods()).find((p) => p.metadata.name.startsWith('allowed-'));
    expect(pod?.spec.nodeSelector).toEqual({ [ALLOWED_KEY]: 'yes' });
    expect(pod?.spec.tolerations).toContainEqual({ key: ALLOWED_KEY, operator: 'Exists', effect: 'NoSchedule' });
  });
});
