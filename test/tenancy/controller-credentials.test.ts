// Tenant attacks on the controller's registry credentials, on a real API server and real registries.
// Team A's registry (htpasswd) holds a private repository; the controller process is handed team A's
// login in an auth file (REGISTRY_AUTH_FILE, as the chart's extraEnv/extraVolumes allow). Tenant B,
// bound to a namespaced Role, tries to copy A's image out and to push into A's repository with
// ImageMirrors that name no credentials: both must fail with "authentication required". With B's own
// Secret naming valid credentials the same mirror works. Malformed credentials Secrets are reported
// by Secret and JSON path, and the password text appears in no status, Event or controller log line.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createControllerManager } from '../../src/controllers/setup.js';
import { copyReference } from '../../src/copy/copy.js';
import { API_VERSION } from '../../src/k8s/api/common.js';
import type { ImageMirror } from '../../src/k8s/api/imagemirror.js';
import type { Manager } from '../../src/k8s/runtime/manager.js';
import { parseImageName } from '../../src/transports/index.js';
import { makeRandomImage } from '../../hack/lib/harness/images.js';
import { startControlPlane, type ControlPlane } from '../../hack/lib/harness/controlplane.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { controllerToken, dockerConfigSecret, mirrorsPath, ready, registryDigest, waitFor } from '../controllers/helpers.js';
import { tenantRequest, tenantSetup } from './tenant.js';

const NS_B = 'team-b';
/** A namespace the administrator did not opt in: the controller's token reads no Secret there. */
const NS_C = 'team-c';
const SYSTEM_NS = 'stevedore-system';
const temps = new TempDirs();
let cp: ControlPlane;
let regA: TestRegistry; // team A's registry, htpasswd
let regP: TestRegistry; // an anonymous registry tenant B writes to and reads from
let manager: Manager;
let stop: AbortController;
let running: Promise<void>;
let tenantToken: string;
const logLines: string[] = [];
const savedEnv = { REGISTRY_AUTH_FILE: process.env.REGISTRY_AUTH_FILE, HOME: process.env.HOME, DOCKER_CONFIG: process.env.DOCKER_CONFIG };
let authFile: string;
let homeDir: string;

/** A password that must never show up anywhere but the Secret it was put in. */
const LEAK = 'Hunter2-Sup3rSecret-Passw0rd';

beforeAll(async () => {
  [cp, regA, regP] = await Promise.all([startControlPlane(), startRegistry({ name: 'team-a', auth: 'basic' }), startRegistry({ name: 'public' })]);
  await cp.installCRDs();
  await cp.createNamespace(NS_B);
  await cp.createNamespace(NS_C);
  const credsA = { username: regA.username!, password: regA.password! };
  const img = await makeRandomImage({ layers: 1, layerSize: 16 * 1024, seed: 'team-a-private', layoutDir: await temps.make('img-a'), ref: '1.0' });
  await copyReference(parseImageName(img.ociRef), parseImageName(`docker://${regA.host}/team-a/private:1.0`), {
    destContext: { credentials: credsA, tlsVerify: false },
  });
  const pub = await makeRandomImage({ layers: 1, layerSize: 16 * 1024, seed: 'public-evil', layoutDir: await temps.make('img-p'), ref: 'evil' });
  await copyReference(parseImageName(pub.ociRef), parseImageName(`docker://${regP.host}/public/app:evil`), {});

  // The controller process is handed team A's login (in its auth file, as a CLI user's would be).
  const login = JSON.stringify({ auths: { [regA.host]: { auth: Buffer.from(`${credsA.username}:${credsA.password}`).toString('base64') } } });
  authFile = join(await temps.make('controller-auth'), 'auth.json');
  await writeFile(authFile, login);
  process.env.REGISTRY_AUTH_FILE = authFile;
  // The same login as Docker keeps it, in a home directory (used by a later test).
  homeDir = await temps.make('controller-home');
  await mkdir(join(homeDir, '.docker'));
  await writeFile(join(homeDir, '.docker', 'config.json'), login);

  tenantToken = await tenantSetup(cp, NS_B, 'tenant-b');
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logLines.push(String(chunk));
      cb();
    },
  });
  manager = createControllerManager({
    kubeConfig: cp.kubeConfigForToken(await controllerToken(cp, SYSTEM_NS, 'stevedore-controller', [NS_B])),
    queue: { backoff: { baseMs: 200, maxMs: 2_000, jitter: 0.1 } },
    processMetrics: false,
    log: pino({ level: 'debug' }, sink),
  });
  stop = new AbortController();
  await manager.start();
  running = manager.run(stop.signal);
});

afterAll(async () => {
  stop?.abort();
  await running;
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await Promise.all([cp?.stop(), regA?.stop(), regP?.stop()]);
  await temps.cleanup();
});

async function createAsTenant(name: string, spec: ImageMirror['spec']): Promise<ImageMirror> {
  const res = await tenantRequest(cp, tenantToken, 'POST', mirrorsPath(NS_B), { apiVersion: API_VERSION, kind: 'ImageMirror', metadata: { name }, spec });
  if (res.status !== 201) throw new Error(`tenant create ${name}: ${res.status} ${res.body}`);
  return res.json as ImageMirror;
}

const getAsTenant = (name: string) => async () => (await tenantRequest(cp, tenantToken, 'GET', mirrorsPath(NS_B, name))).json as ImageMirror;
const settled = (gen: number | undefined) => (m: ImageMirror) =>
  m?.status?.observedGeneration === gen && (ready(m)?.status === 'True' || ready(m)?.status === 'False');

async function tenantEvents(): Promise<string> {
  const res = await tenantRequest(cp, tenantToken, 'GET', `/apis/events.k8s.io/v1/namespaces/${NS_B}/events`);
  expect(res.status).toBe(200);
  return JSON.stringify(res.json);
}

describe('confused deputy: the controller never lends its own registry credentials', () => {
  it('a credential-less mirror cannot copy team A’s private image out', async () => {
    const created = await createAsTenant('steal', {
      source: { registry: { repository: `${regA.host}/team-a/private`, insecure: true } },
      destination: { registry: { repository: `${regP.host}/team-b/stolen`, insecure: true } },
      tags: { list: ['1.0'] },
    });
    const m = await waitFor('steal settles', getAsTenant('steal'), settled(created.metadata.generation));
    expect(ready(m)!.status).toBe('False');
    expect(ready(m)!.message).toMatch(/authentication required/);
    // The message names no secret and no file of the controller.
    expect(ready(m)!.message).not.toMatch(/auth\.json|REGISTRY_AUTH_FILE|Secret/);
    expect(await registryDigest(regP.url, 'team-b/stolen', '1.0')).toBeUndefined();
  });

  it('a credential-less mirror cannot push into team A’s repository', async () => {
    const created = await createAsTenant('push', {
      source: { registry: { repository: `${regP.host}/public/app`, insecure: true } },
      destination: { registry: { repository: `${regA.host}/team-a/private`, insecure: true } },
      tags: { list: ['evil'] },
    });
    const m = await waitFor('push settles', getAsTenant('push'), settled(created.metadata.generation));
    expect(ready(m)!.status).toBe('False');
    expect(ready(m)!.message).toMatch(/authentication required/);
    const res = await fetch(`${regA.url}/v2/team-a/private/manifests/evil`, {
      method: 'HEAD',
      headers: {
        authorization: `Basic ${Buffer.from(`${regA.username}:${regA.password}`).toString('base64')}`,
        accept: 'application/vnd.oci.image.manifest.v1+json',
      },
    });
    expect(res.status).toBe(404);
  });

  it('nor with the login in the controller’s ~/.docker/config.json instead of REGISTRY_AUTH_FILE', async () => {
    delete process.env.REGISTRY_AUTH_FILE;
    delete process.env.DOCKER_CONFIG;
    process.env.HOME = homeDir;
    try {
      const created = await createAsTenant('steal-home', {
        source: { registry: { repository: `${regA.host}/team-a/private`, insecure: true } },
        destination: { registry: { repository: `${regP.host}/team-b/stolen-home`, insecure: true } },
        tags: { list: ['1.0'] },
      });
      const m = await waitFor('steal-home settles', getAsTenant('steal-home'), settled(created.metadata.generation));
      expect(ready(m)!.status).toBe('False');
      expect(ready(m)!.message).toMatch(/authentication required/);
      expect(await registryDigest(regP.url, 'team-b/stolen-home', '1.0')).toBeUndefined();
    } finally {
      process.env.REGISTRY_AUTH_FILE = authFile;
    }
  });

  it('with tenant B’s own Secret naming valid credentials the same copy works', async () => {
    const secret = dockerConfigSecret('b-creds', regA.host, regA.username!, regA.password!);
    expect((await tenantRequest(cp, tenantToken, 'POST', `/api/v1/namespaces/${NS_B}/secrets`, secret)).status).toBe(201);
    const created = await createAsTenant('own-creds', {
      source: { registry: { repository: `${regA.host}/team-a/private`, insecure: true, credentials: { name: 'b-creds' } } },
      destination: { registry: { repository: `${regP.host}/team-b/copy`, insecure: true } },
      tags: { list: ['1.0'] },
    });
    const m = await waitFor('own-creds Ready', getAsTenant('own-creds'), settled(created.metadata.generation));
    expect(ready(m)!.reason).toBe('Succeeded');
    expect(await registryDigest(regP.url, 'team-b/copy', '1.0')).toMatch(/^sha256:/);
  });
});

describe('a namespace that was not opted in', () => {
  it('gets a status saying the Secret is not readable and why, and the controller reads nothing there', async () => {
    const tokenC = await tenantSetup(cp, NS_C, 'tenant-c');
    const secret = dockerConfigSecret('c-creds', regA.host, regA.username!, regA.password!);
    expect((await tenantRequest(cp, tokenC, 'POST', `/api/v1/namespaces/${NS_C}/secrets`, secret)).status).toBe(201);
    const res = await tenantRequest(cp, tokenC, 'POST', mirrorsPath(NS_C), {
      apiVersion: API_VERSION,
      kind: 'ImageMirror',
      metadata: { name: 'not-opted-in' },
      spec: {
        source: { registry: { repository: `${regA.host}/team-a/private`, insecure: true, credentials: { name: 'c-creds' } } },
        destination: { registry: { repository: `${regP.host}/team-c/copy`, insecure: true } },
        tags: { list: ['1.0'] },
      },
    });
    expect(res.status).toBe(201);
    const get = async () => (await tenantRequest(cp, tokenC, 'GET', mirrorsPath(NS_C, 'not-opted-in'))).json as ImageMirror;
    const m = await waitFor('not-opted-in settles', get, settled((res.json as ImageMirror).metadata.generation));
    expect(ready(m)).toMatchObject({ status: 'False', reason: 'CredentialsNotFound' });
    expect(ready(m)!.message).toMatch(/Secret team-c\/c-creds is not readable: .*opted in \(chart value tenantNamespaces\)/);
    expect(await registryDigest(regP.url, 'team-c/copy', '1.0')).toBeUndefined();
  });
});

describe('credentials errors never quote secret material', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const cases: Array<[string, { type: string; text: string }, RegExp]> = [
    // The API server refuses a dockerconfigjson Secret that is not JSON, but not an Opaque one, whose
    // text V8's JSON.parse message would quote (the password): the type is checked before parsing.
    [
      'bad-json',
      { type: 'Opaque', text: `{"auths": {"reg": {"username": "u", "password": "${LEAK}" oops}}}` },
      /has type Opaque; expected kubernetes\.io\/dockerconfigjson/,
    ],
    [
      'bad-base64',
      { type: 'kubernetes.io/dockerconfigjson', text: JSON.stringify({ auths: { 'reg.example': { auth: `${LEAK}!!` } } }) },
      /auths\["reg\.example"\]\.auth is not base64/,
    ],
    [
      'no-colon',
      { type: 'kubernetes.io/dockerconfigjson', text: JSON.stringify({ auths: { 'reg.example': { auth: b64(LEAK) } } }) },
      /auths\["reg\.example"\]\.auth is not base64 of user:password/,
    ],
    ['no-auths', { type: 'kubernetes.io/dockerconfigjson', text: JSON.stringify({ [LEAK]: 'x' }) }, /no "auths" object/],
    [
      'wrong-type',
      { type: 'Opaque', text: JSON.stringify({ auths: { 'reg.example': { auth: b64(`u:${LEAK}`) } } }) },
      /has type Opaque; expected kubernetes\.io\/dockerconfigjson/,
    ],
  ];

  it.each(cases)('%s: status and Events name the Secret and the JSON path, never the text', async (name, s, message) => {
    const body = { apiVersion: 'v1', kind: 'Secret', metadata: { name: `creds-${name}` }, type: s.type, data: { '.dockerconfigjson': b64(s.text) } };
    expect((await tenantRequest(cp, tenantToken, 'POST', `/api/v1/namespaces/${NS_B}/secrets`, body)).status).toBe(201);
    const created = await createAsTenant(`leak-${name}`, {
      source: { registry: { repository: `${regA.host}/team-a/private`, insecure: true, credentials: { name: `creds-${name}` } } },
      destination: { registry: { repository: `${regP.host}/team-b/${name}`, insecure: true } },
      tags: { list: ['1.0'] },
    });
    const m = await waitFor(`${name} settles`, getAsTenant(`leak-${name}`), settled(created.metadata.generation));
    expect(ready(m)!.reason).toBe('CredentialsNotFound');
    expect(ready(m)!.message).toContain(`Secret ${NS_B}/creds-${name}`);
    expect(ready(m)!.message).toMatch(message);
    expect(JSON.stringify(m.status)).not.toContain(LEAK.slice(0, 8));
    await waitFor(`${name} Event`, tenantEvents, (e) => e.includes(`creds-${name}`));
    expect(await tenantEvents()).not.toContain(LEAK.slice(0, 8));
  });

  it('the controller’s log never carries the password either', () => {
    const log = logLines.join('');
    expect(log).toContain('creds-bad-json');
    expect(log).not.toContain(LEAK.slice(0, 8));
  });
});
