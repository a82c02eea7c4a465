/**
 * HTTPS registries on loopback and private CAs (issue 16, defect 3): a real docker-registry serving
 * TLS with a certificate from a CA made here with openssl (and, for one registry, requiring a client
 * certificate from that CA). The client must speak HTTPS to a TLS registry on 127.0.0.1 (it used to
 * ask HTTP first and take the TLS server's 400 for an answer), trust a CA from --cert-dir, a certs.d
 * directory or a sync YAML's cert-dir, and present a client certificate from those directories.
 */
import { closeSync, openSync } from 'node:fs';
import { mkdir, writeFile, copyFile } from 'node:fs/promises';
import { request } from 'node:https';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { loadSyncConfig } from '../../src/copy/sync-config.js';
import { sync } from '../../src/copy/sync.js';
import { RegistryClient } from '../../src/registry/client.js';
import { headManifest } from '../../src/registry/manifests.js';
import { parseImageName } from '../../src/transports/index.js';
import { makeRandomImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { freePort, LOOPBACK, sleep } from '../../hack/lib/harness/net.js';
import { runChecked, spawnManaged, type ManagedProcess } from '../../hack/lib/harness/procs.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';

const temps = new TempDirs();
let pki: string;
let image: FixtureImage;
let plain: TestRegistry;
const procs: ManagedProcess[] = [];
const clients: RegistryClient[] = [];
let tls: { host: string; port: number };
let mtls: { host: string; port: number };

const openssl = (args: string[]) => runChecked('openssl', args, { cwd: pki });

/** A CA, a server certificate for 127.0.0.1/localhost and a client certificate, all signed by the CA. */
async function makePki(): Promise<void> {
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=stevedore test CA']);
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
  await writeFile(join(pki, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=stevedore client']);
  await openssl([
    'x509',
    '-req',
    '-in',
    'client.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'client.cert',
    '-days',
    '2',
    '-extfile',
    'client.ext',
  ]);
}

function httpsReady(port: number, withClientCert: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      { host: LOOPBACK, port, path: '/v2/', rejectUnauthorized: false, timeout: 1000, ...(withClientCert ? { cert: clientCert, key: clientKey } : {}) },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on('error', () => resolve(false));
    req.end();
  });
}
let clientCert = '';
let clientKey = '';

/** docker-registry serving TLS (optionally requiring a client certificate signed by the CA). */
async function startTlsRegistry(name: string, requireClientCert: boolean): Promise<{ host: string; port: number }> {
  const dir = await temps.make(name);
  await mkdir(join(dir, 'storage'));
  const port = await freePort();
  const config = {
    version: '0.1',
    log: { level: 'warn', formatter: 'text' },
    storage: { filesystem: { rootdirectory: join(dir, 'storage') }, delete: { enabled: true }, maintenance: { uploadpurging: { enabled: false } } },
    http: {
      addr: `${LOOPBACK}:${port}`,
      secret: randomBytes(16).toString('hex'),
      tls: { certificate: join(pki, 'server.crt'), key: join(pki, 'server.key'), ...(requireClientCert ? { clientcas: [join(pki, 'ca.crt')] } : {}) },
    },
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
  for (let i = 0; i < 200 && !(await httpsReady(port, requireClientCert)); i++) await sleep(50);
  return { host: `${LOOPBACK}:${port}`, port };
}

beforeAll(async () => {
  pki = await temps.make('pki');
  await makePki();
  const { readFile } = await import('node:fs/promises');
  clientCert = await readFile(join(pki, 'client.cert'), 'utf8');
  clientKey = await readFile(join(pki, 'client.key'), 'utf8');
  [tls, mtls, plain] = await Promise.all([startTlsRegistry('tls-reg', false), startTlsRegistry('mtls-reg', true), startRegistry({ name: 'tls-plain' })]);
  image = await makeRandomImage({ layers: 1, layerSize: 4096, layoutDir: await temps.make('img'), ref: 'x' });
}, 60_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(procs.map((p) => p.stop()));
  await plain?.stop();
  await temps.cleanup();
});

/** A certs.d-style directory holding only the CA (and the client pair when asked). */
async function certDir(name: string, client = false): Promise<string> {
  const dir = await temps.make(name);
  await copyFile(join(pki, 'ca.crt'), join(dir, 'ca.crt'));
  if (client) {
    await copyFile(join(pki, 'client.cert'), join(dir, 'client.cert'));
    await copyFile(join(pki, 'client.key'), join(dir, 'client.key'));
  }
  return dir;
}

describe('TLS registries on loopback', () => {
  it('a TLS registry on 127.0.0.1 is spoken to over HTTPS (loopback skips verification, as Docker does)', async () => {
    const result = await copyReference(parseImageName(image.ociRef), parseImageName(`docker://${tls.host}/loop/app:1`));
    expect(result.digest).toBe(image.manifest.digest);
    const c = new RegistryClient({ registry: tls.host });
    clients.push(c);
    expect(await c.baseUrl()).toBe(`https://${tls.host}`);
    expect((await headManifest(c, 'loop/app', '1'))?.digest).toBe(image.manifest.digest);
  });

  it('a plain-HTTP registry on loopback still works (the HTTPS probe fails fast)', async () => {
    const c = new RegistryClient({ registry: plain.host });
    clients.push(c);
    const started = Date.now();
    expect(await c.baseUrl()).toBe(`http://${plain.host}`);
    // Loose (a loaded machine); a probe that waited for a timeout would take far longer.
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('with verification on, the private CA is trusted from --cert-dir, and refused without it', async () => {
    const host = `localhost:${tls.port}`;
    const without = await copyReference(parseImageName(image.ociRef), parseImageName(`docker://${host}/ca/app:1`), { destContext: { tlsVerify: true } }).catch(
      (e: Error) => e,
    );
    expect(without).toBeInstanceOf(Error);
    expect((without as Error).message).toMatch(/certificate/i);
    const dir = await certDir('ca-only');
    const ok = await copyReference(parseImageName(image.ociRef), parseImageName(`docker://${host}/ca/app:1`), {
      destContext: { tlsVerify: true, certDir: dir },
    });
    expect(ok.digest).toBe(image.manifest.digest);
  });

  it('finds the CA in a certs.d root by host:port when no directory is given', async () => {
    const root = await temps.make('certs.d');
    const host = `localhost:${tls.port}`;
    await mkdir(join(root, host));
    await copyFile(join(pki, 'ca.crt'), join(root, host, 'ca.crt'));
    const c = new RegistryClient({ registry: host, tlsVerify: true, certsDirs: [join(root, 'missing'), root] });
    clients.push(c);
    expect((await headManifest(c, 'loop/app', '1'))?.digest).toBe(image.manifest.digest);
  });

  it('presents a client certificate from the cert dir to a registry that requires one', async () => {
    const host = `localhost:${mtls.port}`;
    const noCert = await copyReference(parseImageName(image.ociRef), parseImageName(`docker://${host}/m/app:1`), {
      destContext: { tlsVerify: true, certDir: await certDir('m-ca') },
    }).catch((e: Error) => e);
    expect(noCert).toBeInstanceOf(Error);
    const ok = await copyReference(parseImageName(image.ociRef), parseImageName(`docker://${host}/m/app:1`), {
      destContext: { tlsVerify: true, certDir: await certDir('m-client', true) },
    });
    expect(ok.digest).toBe(image.manifest.digest);
  });

  it('a sync YAML’s cert-dir is used (it was silently ignored)', async () => {
    const dir = await certDir('yaml-ca');
    const file = join(await temps.make('yaml'), 'sync.yaml');
    await writeFile(file, `localhost:${tls.port}:\n  tls-verify: true\n  cert-dir: ${dir}\n  images:\n    loop/app: ["1"]\n`);
    const report = await sync(await loadSyncConfig(file), { kind: 'registry', registry: plain.host, prefix: 'y' });
    expect(report.failed, JSON.stringify(report.items)).toBe(0);
    expect(report.copied).toBe(1);
  });

  it('a .cert without its .key is refused, naming the file', async () => {
    const dir = await temps.make('half-pair');
    await copyFile(join(pki, 'client.cert'), join(dir, 'client.cert'));
    expect(() => new RegistryClient({ registry: 'localhost:1', certDir: dir })).toThrow(/client\.cert: client certificate without its key/);
  });
});
