/**
 * ImageMirror with private CAs (issue 16 defect 3, the Kubernetes side): spec.*.registry.caSecretRef
 * names a Secret of the mirror's own namespace whose PEM CA verifies that registry, for that
 * mirror only. On a real API server, with docker-registry serving TLS on loopback under a CA made
 * here with openssl. Also spec.compression end to end (zstd:chunked over TLS).
 */
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { request } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { createControllerManager } from '../../src/controllers/setup.js';
import type { Manager } from '../../src/k8s/runtime/manager.js';
import { MediaType } from '../../src/oci/mediatype.js';
import { ZSTD_CHUNKED_MANIFEST_POSITION } from '../../src/oci/zstd-chunked-format.js';
import { parseImageName } from '../../src/transports/index.js';
import { rootLogger } from '../../src/util/log.js';
import { makeRandomImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { startControlPlane, type ControlPlane } from '../../hack/lib/harness/controlplane.js';
import { freePort, LOOPBACK, sleep } from '../../hack/lib/harness/net.js';
import { runChecked, spawnManaged, type ManagedProcess } from '../../hack/lib/harness/procs.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { controllerToken, createMirror, getMirror, ok, ready, waitFor } from './helpers.js';

const NS = 'tls-mirrors';
const OTHER = 'tls-tenant-b';
const SYSTEM_NS = 'stevedore-system';
const temps = new TempDirs();
const procs: ManagedProcess[] = [];
let cp: ControlPlane;
let pki: string;
let src: { host: string; port: number };
let dst: { host: string; port: number };
let image: FixtureImage;
let manager: Manager;
let stop: AbortController;
let running: Promise<void>;
let caPem = '';
let wrongCaPem = '';

const openssl = (args: string[]) => runChecked('openssl', args, { cwd: pki });

function httpsReady(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: LOOPBACK, port, path: '/v2/', rejectUnauthorized: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.end();
  });
}

async function startTlsRegistry(name: string): Promise<{ host: string; port: number }> {
  const dir = await temps.make(name);
  await mkdir(join(dir, 'storage'));
  const port = await freePort();
  const config = {
    version: '0.1',
    log: { level: 'warn', formatter: 'text' },
    storage: { filesystem: { rootdirectory: join(dir, 'storage') }, delete: { enabled: true }, maintenance: { uploadpurging: { enabled: false } } },
    http: { addr: `${LOOPBACK}:${port}`, secret: randomBytes(16).toString('hex'), tls: { certificate: join(pki, 'server.crt'), key: join(pki, 'server.key') } },
  };
  await writeFile(join(dir, 'config.yml'), JSON.stringify(config));
  const fd = openSync(join(dir, 'registry.log'), 'w');
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('REGISTRY_')) env[k] = v;
  try {
    procs.push(await spawnManaged('/usr/bin/docker-registry', ['serve', join(dir, 'config.yml')], { env, output: [fd, fd] }));
  } finally {
    closeSync(fd);
  }
  for (let i = 0; i < 200 && !(await httpsReady(port)); i++) await sleep(50);
  return { host: `${LOOPBACK}:${port}`, port };
}

const caSecret = (name: string, pem: string, key = 'ca.crt') => ({ metadata: { name }, type: 'Opaque', data: { [key]: Buffer.from(pem).toString('base64') } });

/** The manifest at the TLS destination (read with the CA). */
function tlsGet(path: string, accept = MediaType.OciManifest): Promise<{ status: number; body: string; digest?: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: LOOPBACK, port: dst.port, path, ca: caPem, headers: { accept } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString('utf8'),
          digest: res.headers['docker-content-digest'] as string | undefined,
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  pki = await temps.make('pki');
  await openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    '/CN=stevedore mirror test CA',
  ]);
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other.key', '-out', 'other.crt', '-days', '2', '-subj', '/CN=some other CA']);
  await writeFile(join(pki, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
  await openssl([
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.crt',
    '-days',
    '2',
    '-extfile',
    'san.ext',
  ]);
  caPem = await readFile(join(pki, 'ca.crt'), 'utf8');
  wrongCaPem = await readFile(join(pki, 'other.crt'), 'utf8');
  [cp, src, dst] = await Promise.all([startControlPlane(), startTlsRegistry('tls-src'), startTlsRegistry('tls-dst')]);
  await cp.installCRDs();
  await cp.createNamespace(NS);
  await cp.createNamespace(OTHER);
  image = await makeRandomImage({ layers: 2, layerSize: 40_000, seed: 'tls-mirror', layoutDir: await temps.make('img'), ref: '1.0' });
  await copyReference(parseImageName(image.ociRef), parseImageName(`docker://${src.host}/team/app:1.0`), { destContext: { tlsVerify: false } });
  await ok(cp, 'POST', `/api/v1/namespaces/${NS}/secrets`, caSecret('reg-ca', caPem));
  await ok(cp, 'POST', `/api/v1/namespaces/${NS}/secrets`, caSecret('wrong-ca', wrongCaPem));
  await ok(cp, 'POST', `/api/v1/namespaces/${NS}/secrets`, caSecret('not-pem', 'hello, this is no certificate'));
  // The controller may read Secrets in both namespaces: what keeps tenant B from A's CA is the
  // namespace the controller looks in, not RBAC.
  const token = await controllerToken(cp, SYSTEM_NS, 'stevedore-controller', [NS, OTHER]);
  manager = createControllerManager({
    kubeConfig: cp.kubeConfigForToken(token),
    metricsAddr: '127.0.0.1:0',
    leaderElection: { namespace: SYSTEM_NS, name: 'mirrors-tls-test' },
    queue: { backoff: { baseMs: 200, maxMs: 2_000, jitter: 0.1 } },
    processMetrics: false,
    log: rootLogger.child({ test: 'imagemirror-tls' }, { level: 'error' }),
  });
  stop = new AbortController();
  await manager.start();
  running = manager.run(stop.signal);
}, 120_000);

afterAll(async () => {
  stop?.abort();
  await running;
  await cp?.stop();
  await Promise.all(procs.map((p) => p.stop()));
  await temps.cleanup();
});

const side = (host: string, repo: string, ca?: string) => ({ registry: { repository: `${host}/${repo}`, ...(ca ? { caSecretRef: { name: ca } } : {}) } });
const reasonIs =
  (reason: string, status = 'False') =>
  (m: Awaited<ReturnType<typeof getMirror>>) =>
    ready(m)?.status === status && ready(m)?.reason === reason;

describe('ImageMirror caSecretRef', () => {
  it('verifies both TLS registries against the CA of its own namespace, and converts to zstd:chunked (spec.compression)', async () => {
    await createMirror(cp, NS, 'with-ca', {
      source: side(src.host, 'team/app', 'reg-ca'),
      destination: side(dst.host, 'mirror/app', 'reg-ca'),
      compression: 'zstd:chunked',
    });
    const m = await waitFor('Ready=True', () => getMirror(cp, NS, 'with-ca'), reasonIs('Succeeded', 'True'), 60_000);
    expect(m!.status!.tags!.map((t) => [t.tag, t.action])).toEqual([['1.0', 'copied']]);
    const res = await tlsGet('/v2/mirror/app/manifests/1.0');
    expect(res.status).toBe(200);
    const manifest = JSON.parse(res.body) as { layers: { mediaType: string; annotations?: Record<string, string> }[] };
    expect(manifest.layers.map((l) => l.mediaType)).toEqual([MediaType.OciLayerZstd, MediaType.OciLayerZstd]);
    for (const l of manifest.layers) expect(l.annotations?.[ZSTD_CHUNKED_MANIFEST_POSITION]).toBeDefined();
    // The CA directory lives only for the sync: nothing of it is left in the controller's temp dir.
    const { readdir } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    expect((await readdir(tmpdir())).filter((n) => n.startsWith('stevedore-mirror-ca-'))).toEqual([]);
  });

  it('a CA that did not sign the registry certificate fails the sync with the TLS error (verification is on, loopback included)', async () => {
    await createMirror(cp, NS, 'wrong-ca', { source: side(src.host, 'team/app', 'wrong-ca'), destination: side(dst.host, 'wrong/app', 'reg-ca') });
    const m = await waitFor(
      'failed',
      () => getMirror(cp, NS, 'wrong-ca'),
      (x) => ready(x)?.status === 'False' && ready(x)?.reason !== 'Progressing',
      60_000,
    );
    expect(ready(m)!.message).toMatch(/certificate|self.signed|unable to verify/i);
    expect((await tlsGet('/v2/wrong/app/manifests/1.0')).status).toBe(404);
  });

  it('a key without a PEM certificate stalls the mirror, naming the Secret and key, not the content', async () => {
    await createMirror(cp, NS, 'not-pem', { source: side(src.host, 'team/app', 'not-pem'), destination: side(dst.host, 'np/app', 'reg-ca') });
    const m = await waitFor('InvalidSpec', () => getMirror(cp, NS, 'not-pem'), reasonIs('InvalidSpec'), 30_000);
    expect(ready(m)!.message).toContain(`Secret ${NS}/not-pem key ca.crt (spec.source.registry.caSecretRef) holds no PEM certificate`);
    expect(ready(m)!.message).not.toContain('hello');
  });

  it('hostile tenant: a mirror in another namespace naming the CA Secret of the first gets nothing from it', async () => {
    await createMirror(cp, OTHER, 'steal-ca', { source: side(src.host, 'team/app', 'reg-ca'), destination: side(dst.host, 'stolen/app', 'reg-ca') });
    const m = await waitFor('CredentialsNotFound', () => getMirror(cp, OTHER, 'steal-ca'), reasonIs('CredentialsNotFound'), 30_000);
    expect(ready(m)!.message).toContain(`Secret ${OTHER}/reg-ca`);
    expect(ready(m)!.message).toContain('not found');
    expect((await tlsGet('/v2/stolen/app/manifests/1.0')).status).toBe(404);
  });

  it('the API server refuses caSecretRef together with insecure', async () => {
    const err = await createMirror(cp, NS, 'both', {
      source: { registry: { repository: `${src.host}/team/app`, insecure: true, caSecretRef: { name: 'reg-ca' } } },
      destination: side(dst.host, 'b/app'),
    }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/422[\s\S]*caSecretRef and insecure contradict each other/);
  });
});
