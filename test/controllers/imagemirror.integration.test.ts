import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { createControllerManager } from '../../src/controllers/setup.js';
import { IMAGE_MIRROR_FINALIZER } from '../../src/controllers/imagemirror.js';
import { RECONCILE_REQUESTED_AT_ANNOTATION } from '../../src/k8s/api/common.js';
import type { Manager } from '../../src/k8s/runtime/manager.js';
import { parseImageName } from '../../src/transports/index.js';
import { parseReference } from '../../src/oci/reference.js';
import { OciLayout } from '../../src/oci/layout.js';
import { generateKeyPair, loadPrivateKey } from '../../src/sign/keys.js';
import { signImage } from '../../src/sign/sign.js';
import { rootLogger } from '../../src/util/log.js';
import { makeRandomImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { freePort, startControlPlane, type ControlPlane } from '../../hack/lib/harness/controlplane.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import {
  controllerToken,
  createMirror,
  dockerConfigSecret,
  getMirror,
  metricValue,
  mirrorsPath,
  ok,
  patchMirror,
  ready,
  registryDigest,
  scrape,
  waitFor,
} from './helpers.js';

const NS = 'mirrors';
const SYSTEM_NS = 'stevedore-system';
const TAGS = ['1.0', '1.1', '2.0'];

const temps = new TempDirs();
let cp: ControlPlane;
let regA: TestRegistry; // source, basic auth
let regB: TestRegistry; // destination, anonymous
const images = new Map<string, FixtureImage>();
/** Public keys (PEM) of two signing keys; images under regB signed/app:1.0 are signed with a. */
const pubPem = { a: '', b: '' };
let manager: Manager;
/** The controller's --layout-root: volumes of namespace NS appear as <layoutRoot>/NS/<claimName>. */
let layoutRoot: string;
let stop: AbortController;
let running: Promise<void>;

beforeAll(async () => {
  [cp, regA, regB] = await Promise.all([startControlPlane(), startRegistry({ name: 'mirror-src', auth: 'basic' }), startRegistry({ name: 'mirror-dst' })]);
  await cp.installCRDs();
  await cp.createNamespace(NS);
  const creds = { username: regA.username!, password: regA.password! };
  for (const [i, tag] of TAGS.entries()) {
    const img = await makeRandomImage({ layers: 1, layerSize: 32 * 1024, seed: `mirror-${i}`, layoutDir: await temps.make(`img-${i}`), ref: tag });
    images.set(tag, img);
    await copyReference(parseImageName(img.ociRef), parseImageName(`docker://${regA.host}/team/app:${tag}`), {
      destContext: { credentials: creds, tlsVerify: false },
    });
  }
  await ok(cp, 'POST', `/api/v1/namespaces/${NS}/secrets`, dockerConfigSecret('src-creds', regA.host, creds.username, creds.password));
  await ok(cp, 'POST', `/api/v1/namespaces/${NS}/secrets`, dockerConfigSecret('wrong-creds', regA.host, creds.username, 'not-the-password'));

  // Policy fixtures: signed/app:1.0 signed with key a (cosign format), signed/app:2.0 unsigned.
  const keyDir = await temps.make('keys');
  for (const k of ['a', 'b'] as const) {
    const pair = generateKeyPair('pw');
    await writeFile(join(keyDir, `${k}.key`), pair.privatePem);
    pubPem[k] = pair.publicPem;
  }
  for (const tag of ['1.0', '2.0']) {
    await copyReference(parseImageName(images.get(tag)!.ociRef), parseImageName(`docker://${regB.host}/signed/app:${tag}`), {});
  }
  await signImage(parseReference(`${regB.host}/signed/app:1.0`), await loadPrivateKey(join(keyDir, 'a.key'), 'pw'));

  // The controller authenticates as a ServiceAccount bound only to config/rbac/role.yaml.
  layoutRoot = await temps.make('layouts');
  await mkdir(join(layoutRoot, NS, 'usb'), { recursive: true });
  const token = await controllerToken(cp, SYSTEM_NS, 'stevedore-controller', [NS]);
  manager = createControllerManager({
    kubeConfig: cp.kubeConfigForToken(token),
    namespace: NS,
    metricsAddr: '127.0.0.1:0',
    leaderElection: { namespace: SYSTEM_NS, name: 'mirrors-test' },
    queue: { backoff: { baseMs: 200, maxMs: 2_000, jitter: 0.1 } },
    processMetrics: false,
    layoutRoot,
    log: rootLogger.child({ test: 'imagemirror' }, { level: 'error' }),
  });
  stop = new AbortController();
  await manager.start();
  running = manager.run(stop.signal);
});

afterAll(async () => {
  stop?.abort();
  await running;
  await Promise.all([cp?.stop(), regA?.stop(), regB?.stop()]);
  await temps.cleanup();
});

const source = (repo = 'team/app', secret = 'src-creds') => ({
  registry: { repository: `${regA.host}/${repo}`, credentials: { name: secret }, insecure: true },
});
const destination = (prefix: string) => ({ registry: { repository: `${regB.host}/${prefix}/team/app`, insecure: true } });
const get = (name: string) => () => getMirror(cp, NS, name);
const readyAt =
  (gen: number | undefined, reason?: string, status = 'True') =>
  (m: Awaited<ReturnType<typeof getMirror>>) =>
    m?.status?.observedGeneration === gen && ready(m)?.status === status && (reason === undefined || ready(m)?.reason === reason);

describe('ImageMirror controller on a real API server and real registries', () => {
  it('mirrors three tags from registry A to registry B and reports Ready=True with their digests', async () => {
    const created = await createMirror(cp, NS, 'app', { source: source(), destination: destination('mirror') });
    const m = await waitFor('Ready=True', get('app'), readyAt(created.metadata.generation, 'Succeeded'));
    expect(m!.metadata.finalizers).toContain(IMAGE_MIRROR_FINALIZER);
    expect(m!.status!.tags!.map((t) => [t.tag, t.action, t.digest])).toEqual(TAGS.map((t) => [t, 'copied', images.get(t)!.manifest.digest]));
    expect(m!.status!.counts).toEqual({ selected: 3, copied: 3, skipped: 0, failed: 0, denied: 0, pruned: 0 });
    expect(m!.status!.lastSyncTime).toBeTruthy();
    expect(m!.status!.nextSyncTime).toBeUndefined();
    expect(m!.status!.conditions!.map((c) => c.type)).toEqual(['Ready']);
    for (const tag of TAGS) expect(await registryDigest(regB.url, 'mirror/team/app', tag)).toBe(images.get(tag)!.manifest.digest);
    const events = (await ok(cp, 'GET', `/apis/events.k8s.io/v1/namespaces/${NS}/events`)) as { items: { reason: string; regarding: { name: string } }[] };
    expect(events.items.some((e) => e.regarding.name === 'app' && e.reason === 'Succeeded')).toBe(true);
  });

  it('reconciles a changed tag selection: observedGeneration advances and the status lists the new selection', async () => {
    const patched = await patchMirror(cp, NS, 'app', { spec: { tags: { list: ['1.0', '2.0'] }, schedule: { interval: '1h' } } });
    const m = await waitFor('new generation', get('app'), readyAt(patched.metadata.generation, 'Succeeded'));
    expect(patched.metadata.generation).toBeGreaterThan(1);
    expect(m!.status!.tags!.map((t) => [t.tag, t.action])).toEqual([
      ['1.0', 'skipped'],
      ['2.0', 'skipped'],
    ]);
    const next = Date.parse(m!.status!.nextSyncTime!) - Date.parse(m!.status!.lastSyncTime!);
    expect(next).toBeGreaterThan(55 * 60_000);
    expect(next).toBeLessThanOrEqual(60 * 60_000);
  });

  it('runs again when reconcile.stevedore.dev/requestedAt changes and records it as lastHandledReconcileAt', async () => {
    const before = (await getMirror(cp, NS, 'app'))!.status!.lastSyncTime!;
    await new Promise((r) => setTimeout(r, 1100));
    await patchMirror(cp, NS, 'app', { metadata: { annotations: { [RECONCILE_REQUESTED_AT_ANNOTATION]: 'now-1' } } });
    const m = await waitFor('handled request', get('app'), (x) => x?.status?.lastHandledReconcileAt === 'now-1');
    expect(m!.status!.lastSyncTime! > before).toBe(true);
  });

  it('does not sync a suspended mirror, and syncs once it is resumed', async () => {
    const created = await createMirror(cp, NS, 'paused', { source: source(), destination: destination('paused'), suspend: true });
    await waitFor('Suspended', get('paused'), readyAt(created.metadata.generation, 'Suspended', 'False'));
    await new Promise((r) => setTimeout(r, 500));
    expect(await registryDigest(regB.url, 'paused/team/app', '1.0')).toBeUndefined();
    const resumed = await patchMirror(cp, NS, 'paused', { spec: { suspend: false } });
    await waitFor('Ready after resume', get('paused'), readyAt(resumed.metadata.generation, 'Succeeded'));
    expect(await registryDigest(regB.url, 'paused/team/app', '1.0')).toBe(images.get('1.0')!.manifest.digest);
  });

  it('reports wrong registry credentials as Ready=False SyncFailed with the registry’s refusal', async () => {
    const created = await createMirror(cp, NS, 'wrong-creds', { source: source('team/app', 'wrong-creds'), destination: destination('wrong') });
    const m = await waitFor('SyncFailed', get('wrong-creds'), readyAt(created.metadata.generation, 'SyncFailed', 'False'));
    expect(ready(m)!.message).toMatch(/401|unauthori[sz]ed|denied|authentication/i);
    expect(await registryDigest(regB.url, 'wrong/team/app', '1.0')).toBeUndefined();
  });

  it('reports a missing credentials Secret as Ready=False CredentialsNotFound', async () => {
    const created = await createMirror(cp, NS, 'no-secret', { source: source('team/app', 'does-not-exist'), destination: destination('nosecret') });
    const m = await waitFor('CredentialsNotFound', get('no-secret'), readyAt(created.metadata.generation, 'CredentialsNotFound', 'False'));
    expect(ready(m)!.message).toContain(`Secret ${NS}/does-not-exist not found`);
  });

  it('reports an unreachable registry as Ready=False SyncFailed and retries with backoff', async () => {
    const port = await freePort();
    const created = await createMirror(cp, NS, 'unreachable', {
      source: { registry: { repository: `127.0.0.1:${port}/team/app`, insecure: true } },
      destination: destination('unreachable'),
    });
    const m = await waitFor('SyncFailed', get('unreachable'), readyAt(created.metadata.generation, 'SyncFailed', 'False'));
    expect(ready(m)!.message).toMatch(/ECONNREFUSED|connect|fetch failed/i);
    const errorsNow = metricValue(await scrape(manager.healthAddress!), 'stevedore_controller_reconcile_errors_total', 'controller="imagemirror"');
    await waitFor(
      'retries',
      async () => metricValue(await scrape(manager.healthAddress!), 'stevedore_controller_reconcile_errors_total', 'controller="imagemirror"'),
      (n) => n >= errorsNow + 2,
      10_000,
    );
    await ok(cp, 'DELETE', mirrorsPath(NS, 'unreachable'));
  });

  it('reports tags that fail while others succeed as PartialFailure, naming the failed tags', async () => {
    const created = await createMirror(cp, NS, 'partial', {
      source: source(),
      destination: destination('partial'),
      tags: { list: ['1.0', 'missing-tag'] },
    });
    const m = await waitFor('PartialFailure', get('partial'), readyAt(created.metadata.generation, 'PartialFailure', 'False'));
    expect(ready(m)!.message).toContain('missing-tag');
    expect(m!.status!.counts).toMatchObject({ selected: 2, copied: 1, failed: 1 });
    const failed = m!.status!.tags!.find((t) => t.tag === 'missing-tag')!;
    expect(failed.action).toBe('failed');
    expect(failed.error).toBeTruthy();
    expect(await registryDigest(regB.url, 'partial/team/app', '1.0')).toBe(images.get('1.0')!.manifest.digest);
  });

  it('mirrors into a repository of another name (a rename)', async () => {
    const created = await createMirror(cp, NS, 'renamed', {
      source: source(),
      destination: { registry: { repository: `${regB.host}/elsewhere`, insecure: true } },
      tags: { list: ['1.0'] },
    });
    await waitFor('Ready', get('renamed'), readyAt(created.metadata.generation, 'Succeeded', 'True'));
    expect(await registryDigest(regB.url, 'elsewhere', '1.0')).toBe(images.get('1.0')!.manifest.digest);
  });

  describe('spec.policy (containers-policy.json in a Secret) and spec.signatures', () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const policySecret = (name: string, data: Record<string, string>) =>
      ok(cp, 'POST', `/api/v1/namespaces/${NS}/secrets`, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name },
        type: 'Opaque',
        data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
      });
    /** Only signed/… under regB needs a signature by the given requirement; everything else is refused. */
    const policyDoc = (requirement: object) =>
      JSON.stringify({ default: [{ type: 'reject' }], transports: { docker: { [`${regB.host}/signed`]: [{ type: 'sigstoreSigned', ...requirement }] } } });
    const signedSource = () => ({ registry: { repository: `${regB.host}/signed/app`, insecure: true } });
    const sigTag = async (repo: string, tag: string) => {
      const digest = await registryDigest(regB.url, repo, tag);
      return digest ? registryDigest(regB.url, repo, `${digest.replace(':', '-')}.sig`) : undefined;
    };
    const events = async (name: string) =>
      (
        (await ok(cp, 'GET', `/apis/events.k8s.io/v1/namespaces/${NS}/events`)) as {
          items: { reason: string; note?: string; type: string; regarding: { name: string } }[];
        }
      ).items.filter((e) => e.regarding.name === name);

    beforeAll(async () => {
      await policySecret('policy-a', { 'policy.json': policyDoc({ keyPath: 'cosign.pub' }), 'cosign.pub': pubPem.a });
      await policySecret('policy-b', { 'policy.json': policyDoc({ keyData: b64(pubPem.b) }) });
      await policySecret('policy-unknown-field', { 'policy.json': JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }], transport: {} }) });
      await policySecret('policy-file-path', { 'policy.json': policyDoc({ keyPath: '/etc/ssl/certs/ca-certificates.crt' }) });
    });

    it('copies the signed tag with its signature and denies the unsigned one, saying why (PartialFailure, Event)', async () => {
      const created = await createMirror(cp, NS, 'policy-mixed', {
        source: signedSource(),
        destination: { registry: { repository: `${regB.host}/checked/app`, insecure: true } },
        policy: { secretRef: { name: 'policy-a' } },
      });
      const m = await waitFor('PartialFailure', get('policy-mixed'), readyAt(created.metadata.generation, 'PartialFailure', 'False'));
      expect(m!.status!.tags!.map((t) => [t.tag, t.action])).toEqual([
        ['1.0', 'copied'],
        ['2.0', 'denied'],
      ]);
      const denied = m!.status!.tags!.find((t) => t.tag === '2.0')!;
      expect(denied.error).toMatch(/^policy denied: .*signature/i);
      expect(m!.status!.counts).toMatchObject({ selected: 2, copied: 1, failed: 0, denied: 1 });
      expect(ready(m)!.message).toContain('were denied by spec.policy (2.0)');
      expect(await registryDigest(regB.url, 'checked/app', '1.0')).toBe(images.get('1.0')!.manifest.digest);
      expect(await registryDigest(regB.url, 'checked/app', '2.0')).toBeUndefined();
      // The signature travelled with the image (spec.signatures defaults to carry).
      expect(await sigTag('checked/app', '1.0')).toBeTruthy();
      const evs = await waitFor(
        'PolicyDenied Event',
        () => events('policy-mixed'),
        (es) => es.some((e) => e.reason === 'PolicyDenied'),
      );
      const ev = evs.find((e) => e.reason === 'PolicyDenied')!;
      expect(ev.type).toBe('Warning');
      expect(ev.note).toContain('2.0: policy denied');
    });

    it('denies a tag signed by another key than the policy names: Ready=False PolicyDenied, nothing copied', async () => {
      const created = await createMirror(cp, NS, 'policy-wrong-key', {
        source: signedSource(),
        destination: { registry: { repository: `${regB.host}/wrongkey/app`, insecure: true } },
        tags: { list: ['1.0'] },
        policy: { secretRef: { name: 'policy-b' } },
      });
      const m = await waitFor('PolicyDenied', get('policy-wrong-key'), readyAt(created.metadata.generation, 'PolicyDenied', 'False'));
      expect(m!.status!.tags).toEqual([expect.objectContaining({ tag: '1.0', action: 'denied', error: expect.stringMatching(/^policy denied: /) })]);
      expect(ready(m)!.message).toMatch(/^spec.policy refused every tag, nothing was copied: 1.0: policy denied: /);
      expect(await registryDigest(regB.url, 'wrongkey/app', '1.0')).toBeUndefined();
      expect((await events('policy-wrong-key')).some((e) => e.reason === 'PolicyDenied' && e.type === 'Warning')).toBe(true);
    });

    it('leaves signatures behind with spec.signatures: remove', async () => {
      const created = await createMirror(cp, NS, 'policy-nosig', {
        source: signedSource(),
        destination: { registry: { repository: `${regB.host}/nosig/app`, insecure: true } },
        tags: { list: ['1.0'] },
        policy: { secretRef: { name: 'policy-a' } },
        signatures: 'remove',
      });
      await waitFor('Ready', get('policy-nosig'), readyAt(created.metadata.generation, 'Succeeded'));
      expect(await registryDigest(regB.url, 'nosig/app', '1.0')).toBe(images.get('1.0')!.manifest.digest);
      expect(await sigTag('nosig/app', '1.0')).toBeUndefined();
    });

    it('stalls on a policy that does not parse, with containers/image’s strictness, naming the Secret and the field', async () => {
      const created = await createMirror(cp, NS, 'policy-bad', {
        source: signedSource(),
        destination: { registry: { repository: `${regB.host}/badpolicy/app`, insecure: true } },
        policy: { secretRef: { name: 'policy-unknown-field' } },
      });
      const m = await waitFor('Stalled', get('policy-bad'), readyAt(created.metadata.generation, 'InvalidPolicy', 'False'));
      expect(m!.status!.conditions!.find((c) => c.type === 'Stalled')).toMatchObject({ status: 'True', reason: 'InvalidPolicy' });
      expect(ready(m)!.message).toContain(`Secret ${NS}/policy-unknown-field key policy.json`);
      expect(ready(m)!.message).toContain('unknown field "transport"');
      expect(await registryDigest(regB.url, 'badpolicy/app', '1.0')).toBeUndefined();
    });

    it('refuses key paths that name files of the controller instead of keys of the Secret', async () => {
      const created = await createMirror(cp, NS, 'policy-path', {
        source: signedSource(),
        destination: { registry: { repository: `${regB.host}/pathpolicy/app`, insecure: true } },
        policy: { secretRef: { name: 'policy-file-path' } },
      });
      const m = await waitFor('Stalled', get('policy-path'), readyAt(created.metadata.generation, 'InvalidPolicy', 'False'));
      expect(ready(m)!.message).toContain('"/etc/ssl/certs/ca-certificates.crt" is not a key of Secret');
    });

    it('waits for a policy Secret that does not exist yet (PolicyNotFound), then syncs once it appears', async () => {
      const created = await createMirror(cp, NS, 'policy-later', {
        source: signedSource(),
        destination: { registry: { repository: `${regB.host}/later/app`, insecure: true } },
        tags: { list: ['1.0'] },
        policy: { secretRef: { name: 'policy-later', key: 'containers-policy.json' } },
      });
      const m = await waitFor('PolicyNotFound', get('policy-later'), readyAt(created.metadata.generation, 'PolicyNotFound', 'False'));
      expect(ready(m)!.message).toContain(`Secret ${NS}/policy-later not found`);
      expect(m!.status!.conditions!.some((c) => c.type === 'Stalled')).toBe(false);
      await policySecret('policy-later', { 'containers-policy.json': policyDoc({ keyPath: 'k.pub' }), 'k.pub': pubPem.a });
      await waitFor('Ready after the Secret appears', get('policy-later'), readyAt(created.metadata.generation, 'Succeeded'), 30_000);
      expect(await registryDigest(regB.url, 'later/app', '1.0')).toBe(images.get('1.0')!.manifest.digest);
    });
  });

  describe('OCI layouts on volumes the controller mounts under --layout-root', () => {
    const usb = () => join(layoutRoot, NS, 'usb');

    it('exports tags from a registry to a layout per repository on the volume (<path>/<source repository>)', async () => {
      const created = await createMirror(cp, NS, 'export', {
        source: source(),
        destination: { layout: { claimName: 'usb', path: 'export' } },
        tags: { list: ['1.0', '2.0'] },
      });
      const m = await waitFor('Ready', get('export'), readyAt(created.metadata.generation, 'Succeeded'));
      expect(m!.status!.tags!.map((t) => [t.tag, t.action, t.digest])).toEqual(['1.0', '2.0'].map((t) => [t, 'copied', images.get(t)!.manifest.digest]));
      const layout = await OciLayout.open(join(usb(), 'export', 'team', 'app'));
      expect((await layout.refNames()).sort()).toEqual(['1.0', '2.0']);
      expect((await layout.resolve('2.0')).digest).toBe(images.get('2.0')!.manifest.digest);
    });

    it('imports a layout into a registry (the round trip keeps digests), and skips what is there on the next sync', async () => {
      const created = await createMirror(cp, NS, 'import', {
        source: { layout: { claimName: 'usb', path: '/export/team/app' } },
        destination: { registry: { repository: `${regB.host}/imported/team/app`, insecure: true } },
      });
      const m = await waitFor('Ready', get('import'), readyAt(created.metadata.generation, 'Succeeded'));
      expect(m!.status!.counts).toMatchObject({ selected: 2, copied: 2, failed: 0 });
      for (const tag of ['1.0', '2.0']) expect(await registryDigest(regB.url, 'imported/team/app', tag)).toBe(images.get(tag)!.manifest.digest);
      await patchMirror(cp, NS, 'import', { metadata: { annotations: { [RECONCILE_REQUESTED_AT_ANNOTATION]: 'again' } } });
      const again = await waitFor('second sync', get('import'), (x) => x?.status?.lastHandledReconcileAt === 'again');
      expect(again!.status!.counts).toMatchObject({ selected: 2, copied: 0, skipped: 2 });
    });

    it('puts layout imports through spec.policy (oci transport scopes)', async () => {
      const b64 = (v: string) => Buffer.from(v).toString('base64');
      const doc = { default: [{ type: 'insecureAcceptAnything' }], transports: { oci: { '': [{ type: 'reject' }] } } };
      await ok(cp, 'POST', `/api/v1/namespaces/${NS}/secrets`, { metadata: { name: 'reject-layouts' }, data: { 'policy.json': b64(JSON.stringify(doc)) } });
      const created = await createMirror(cp, NS, 'import-denied', {
        source: { layout: { claimName: 'usb', path: 'export/team/app' } },
        destination: { registry: { repository: `${regB.host}/denied-import/team/app`, insecure: true } },
        policy: { secretRef: { name: 'reject-layouts' } },
      });
      const m = await waitFor('PolicyDenied', get('import-denied'), readyAt(created.metadata.generation, 'PolicyDenied', 'False'));
      expect(m!.status!.tags!.map((t) => t.action)).toEqual(['denied', 'denied']);
      expect(await registryDigest(regB.url, 'denied-import/team/app', '1.0')).toBeUndefined();
    });

    it('waits for a volume that is not mounted (LayoutNotFound) and exports once it appears', async () => {
      const created = await createMirror(cp, NS, 'late-volume', {
        source: source(),
        destination: { layout: { claimName: 'late', path: 'out' } },
        tags: { list: ['1.0'] },
      });
      const m = await waitFor('LayoutNotFound', get('late-volume'), readyAt(created.metadata.generation, 'LayoutNotFound', 'False'));
      expect(ready(m)!.message).toContain('volume "late" is not mounted in the controller');
      expect(m!.status!.conditions!.some((c) => c.type === 'Stalled')).toBe(false);
      await mkdir(join(layoutRoot, NS, 'late'));
      await waitFor('Ready once mounted', get('late-volume'), readyAt(created.metadata.generation, 'Succeeded'), 30_000);
      expect((await (await OciLayout.open(join(layoutRoot, NS, 'late', 'out', 'team', 'app'))).resolve('1.0')).digest).toBe(images.get('1.0')!.manifest.digest);
    });

    it('stalls on a layout path that leads out of its volume through a symbolic link', async () => {
      const outside = await temps.make('outside');
      await symlink(outside, join(usb(), 'escape'));
      const created = await createMirror(cp, NS, 'escape', {
        source: source(),
        destination: { layout: { claimName: 'usb', path: 'escape/deeper' } },
        tags: { list: ['1.0'] },
      });
      const m = await waitFor('Stalled', get('escape'), readyAt(created.metadata.generation, 'InvalidSpec', 'False'));
      expect(ready(m)!.message).toContain('leads out of volume "usb"');
      expect(m!.status!.conditions!.find((c) => c.type === 'Stalled')).toMatchObject({ status: 'True', reason: 'InvalidSpec' });
    });

    it('refuses ".." in a layout path at admission', async () => {
      const err = await createMirror(cp, NS, 'dotdot', {
        source: source(),
        destination: { layout: { claimName: 'usb', path: 'export/../../other-namespace' } },
      }).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err?.message).toMatch(/422/);
      expect(err?.message).toContain('layout.path must not contain \\"..\\"');
    });
  });

  it('stalls on a spec the controller cannot carry out, without retrying', async () => {
    const created = await createMirror(cp, NS, 'from-layout', {
      source: { layout: { claimName: 'usb', path: 'images/app' } },
      destination: destination('from-layout'),
      prune: true,
    });
    const m = await waitFor('Stalled', get('from-layout'), readyAt(created.metadata.generation, 'InvalidSpec', 'False'));
    expect(ready(m)!.message).toContain('spec.prune is not supported with a layout source');
    expect(m!.status!.conditions!.find((c) => c.type === 'Stalled')).toMatchObject({ status: 'True', reason: 'InvalidSpec' });
  });

  it('accepts examples/imagemirror.yaml at admission', async () => {
    const example = parseYaml(await readFile(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'imagemirror.yaml'), 'utf8')) as {
      spec: object;
    };
    await ok(cp, 'POST', `${mirrorsPath(NS)}?dryRun=All`, { ...example, metadata: { name: 'example' } });
  });

  it('removes its finalizer when a mirror is deleted, so the object goes away', async () => {
    await ok(cp, 'DELETE', mirrorsPath(NS, 'app'));
    await waitFor('gone', get('app'), (m) => m === undefined);
    // Mirrored images stay in the destination.
    expect(await registryDigest(regB.url, 'mirror/team/app', '1.0')).toBe(images.get('1.0')!.manifest.digest);
  });

  it('serves /healthz, /readyz and Prometheus metrics', async () => {
    const addr = manager.healthAddress!;
    expect((await fetch(`http://${addr}/healthz`)).status).toBe(200);
    expect((await fetch(`http://${addr}/readyz`)).status).toBe(200);
    const text = await scrape(addr);
    expect(metricValue(text, 'stevedore_controller_reconcile_total', 'result="success"')).toBeGreaterThan(0);
    expect(text).toContain('stevedore_controller_reconcile_duration_seconds_bucket');
    expect(text).toContain('stevedore_workqueue_depth');
  });
});
