/**
 * Proves the test harness itself against independent clients (skopeo, plain HTTP): real
 * docker-registry processes in each auth mode, the token issuer, and the fault proxy.
 */
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';
import { writeTestImageLayout, type TestImage } from './fixtures.js';
import { httpGet } from '../../hack/lib/harness/net.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { creds, skopeo } from './skopeo.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const tmp = new TempDirs();
let img: TestImage;
let none: TestRegistry;
let basic: TestRegistry;
let token: TestRegistry;

beforeAll(async () => {
  [img, none, basic, token] = await Promise.all([
    tmp.make('image').then((d) => writeTestImageLayout(d, { tag: 'v1' })),
    startRegistry({ auth: 'none', name: 'harness-none' }),
    startRegistry({ auth: 'basic', name: 'harness-basic' }),
    startRegistry({ auth: 'token', name: 'harness-token' }),
  ]);
});

afterAll(async () => {
  await Promise.all([none?.stop(), basic?.stop(), token?.stop()]);
  await tmp.cleanup();
});

// A failing test prints the registries' logs: the registry side of an error is usually the answer.
afterEach(async (ctx) => {
  if (ctx.task.result?.state !== 'fail') return;
  for (const r of [none, basic, token]) if (r) console.log(`--- ${r.name} log (${r.logFile}) ---\n${await r.readLog()}`);
});

function sha256(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function basicAuth(r: TestRegistry): Record<string, string> {
  return { Authorization: `Basic ${Buffer.from(creds(r)).toString('base64')}` };
}

async function push(reg: TestRegistry | { host: string }, repo: string, credFlags: string[] = []) {
  return skopeo(['copy', '--dest-tls-verify=false', ...credFlags, img.ociRef, `docker://${reg.host}/${repo}`]);
}

async function inspectDigest(host: string, repo: string, credFlags: string[] = []) {
  const res = await skopeo(['inspect', '--tls-verify=false', ...credFlags, '--format', '{{.Digest}}', `docker://${host}/${repo}`]);
  return { ...res, digest: res.stdout.trim() };
}

describe('registry without auth', () => {
  test('GET /v2/ answers 200 to anonymous clients', async () => {
    const res = await httpGet(`${none.url}/v2/`);
    expect(res.status).toBe(200);
    expect(res.headers['docker-distribution-api-version']).toBe('registry/2.0');
    expect(none.host).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  test('skopeo pushes a hand-built OCI image and reads back the same manifest digest', async () => {
    const pushed = await push(none, 'harness/tiny:v1');
    expect(pushed.code, pushed.stderr).toBe(0);
    const got = await inspectDigest(none.host, 'harness/tiny:v1');
    expect(got.code, got.stderr).toBe(0);
    expect(got.digest).toBe(img.manifestDigest);
  });

  test('manifest DELETE is enabled in storage', async () => {
    const pushed = await push(none, 'harness/deleteme:v1');
    expect(pushed.code, pushed.stderr).toBe(0);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${none.url}/v2/harness/deleteme/manifests/${img.manifestDigest}`, { method: 'DELETE', agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(202);
    expect((await httpGet(`${none.url}/v2/harness/deleteme/manifests/v1`, { Accept: OCI_MANIFEST })).status).toBe(404);
  });
});

describe('registry with basic auth', () => {
  test('GET /v2/ challenges with Basic and accepts the generated credentials', async () => {
    const anon = await httpGet(`${basic.url}/v2/`);
    expect(anon.status).toBe(401);
    expect(anon.headers['www-authenticate']).toMatch(/^Basic realm="/);
    expect((await httpGet(`${basic.url}/v2/`, basicAuth(basic))).status).toBe(200);
    expect(basic.username).toBeTruthy();
    expect(basic.password).toBeTruthy();
  });

  test('skopeo copy succeeds with credentials and fails without or with a wrong password', async () => {
    const ok = await push(basic, 'harness/tiny:v1', ['--dest-creds', creds(basic)]);
    expect(ok.code, ok.stderr).toBe(0);
    const anon = await push(basic, 'harness/anon:v1');
    expect(anon.code).not.toBe(0);
    expect(anon.stderr).toMatch(/unauthorized|authentication required/i);
    const wrong = await push(basic, 'harness/wrong:v1', ['--dest-creds', `${basic.username}:not-the-password`]);
    expect(wrong.code).not.toBe(0);
    const got = await inspectDigest(basic.host, 'harness/tiny:v1', ['--creds', creds(basic)]);
    expect(got.digest).toBe(img.manifestDigest);
    expect((await inspectDigest(basic.host, 'harness/tiny:v1')).code).not.toBe(0);
  });
});

describe('registry with token auth', () => {
  test('GET /v2/ challenges with a Bearer realm pointing at the harness issuer', async () => {
    const res = await httpGet(`${token.url}/v2/`);
    expect(res.status).toBe(401);
    const challenge = String(res.headers['www-authenticate']);
    expect(challenge).toContain(`Bearer realm="${token.realm}"`);
    expect(challenge).toContain(`service="${token.service}"`);
    expect(token.realm).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/token$/);
  });

  test('skopeo copy and inspect work with credentials; each request fetches scoped tokens', async () => {
    const before = token.tokenRequests();
    const ok = await push(token, 'harness/tiny:v1', ['--dest-creds', creds(token)]);
    expect(ok.code, ok.stderr).toBe(0);
    const got = await inspectDigest(token.host, 'harness/tiny:v1', ['--creds', creds(token)]);
    expect(got.code, got.stderr).toBe(0);
    expect(got.digest).toBe(img.manifestDigest);
    expect(token.tokenRequests()).toBeGreaterThan(before);
    const log = token.tokenLog().slice(before);
    expect(log.some((e) => e.user === token.username && e.scopes.includes('repository:harness/tiny:pull,push'))).toBe(true);
    expect(log.every((e) => e.status === 200)).toBe(true);
  });

  test('anonymous clients get an empty-access token and are denied; wrong passwords get 401 from the issuer', async () => {
    const pushed = await push(token, 'harness/tiny:v1', ['--dest-creds', creds(token)]);
    expect(pushed.code, pushed.stderr).toBe(0);
    const before = token.tokenRequests();
    const anon = await inspectDigest(token.host, 'harness/tiny:v1');
    expect(anon.code).not.toBe(0);
    expect(anon.stderr).toMatch(/denied|unauthorized/i);
    const anonEntries = token.tokenLog().slice(before);
    expect(anonEntries.length).toBeGreaterThan(0);
    expect(anonEntries.every((e) => e.user === undefined && e.granted.length === 0)).toBe(true);

    const wrong = await httpGet(`${token.realm}?service=${token.service}&scope=repository:harness/tiny:pull`, {
      Authorization: `Basic ${Buffer.from(`${token.username}:nope`).toString('base64')}`,
    });
    expect(wrong.status).toBe(401);
  });

  test('issued tokens carry the requested access and the registry accepts them as Bearer', async () => {
    const pushed = await push(token, 'harness/tiny:v1', ['--dest-creds', creds(token)]);
    expect(pushed.code, pushed.stderr).toBe(0);
    const res = await httpGet(`${token.realm}?service=${token.service}&scope=repository:harness/tiny:pull`, basicAuth(token));
    expect(res.status).toBe(200);
    const body = JSON.parse(res.body) as { token: string; access_token: string; expires_in: number; issued_at: string };
    expect(body.access_token).toBe(body.token);
    expect(body.expires_in).toBeGreaterThan(0);
    const [h, c] = body.token
      .split('.')
      .slice(0, 2)
      .map((p) => JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>);
    expect(h).toMatchObject({ alg: 'ES256', typ: 'JWT' });
    expect(Array.isArray(h.x5c)).toBe(true);
    expect(c).toMatchObject({ aud: token.service, sub: token.username, access: [{ type: 'repository', name: 'harness/tiny', actions: ['pull'] }] });

    const manifestUrl = `${token.url}/v2/harness/tiny/manifests/v1`;
    const bearer = (t: string) => ({ Authorization: `Bearer ${t}`, Accept: OCI_MANIFEST });
    expect((await httpGet(manifestUrl, bearer(body.token))).status).toBe(200);

    // Both ways distribution 2.8 finds the signing key work on their own.
    const issuer = token.tokenIssuer!;
    const access = [{ type: 'repository', name: 'harness/tiny', actions: ['pull'] }];
    expect((await httpGet(manifestUrl, bearer(issuer.mint('x', access, { keyRef: 'kid' })))).status).toBe(200);
    expect((await httpGet(manifestUrl, bearer(issuer.mint('x', access, { keyRef: 'x5c' })))).status).toBe(200);
    // Tokens the registry must refuse: expired (beyond its 60 s leeway), wrong audience, no access.
    const hourAgo = Math.floor(Date.now() / 1000) - 3600;
    expect((await httpGet(manifestUrl, bearer(issuer.mint('x', access, { nowSeconds: hourAgo, ttlSeconds: 60 })))).status).toBe(401);
    expect((await httpGet(manifestUrl, bearer(issuer.mint('x', access, { aud: 'other-service' })))).status).toBe(401);
    expect((await httpGet(manifestUrl, bearer(issuer.mint('x', [])))).status).toBe(401);
  });

  test('the issuer also speaks the OAuth2 password and refresh_token grants', async () => {
    const post = async (form: Record<string, string>) => {
      const res = await fetch(token.realm!, { method: 'POST', body: new URLSearchParams(form) });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const scope = 'repository:harness/tiny:pull';
    const pw = await post({
      grant_type: 'password',
      username: token.username!,
      password: token.password!,
      service: token.service!,
      scope,
      access_type: 'offline',
      client_id: 'stevedore-test',
    });
    expect(pw.status).toBe(200);
    expect(typeof pw.body.access_token).toBe('string');
    expect(typeof pw.body.refresh_token).toBe('string');
    const rt = await post({
      grant_type: 'refresh_token',
      refresh_token: String(pw.body.refresh_token),
      service: token.service!,
      scope,
      client_id: 'stevedore-test',
    });
    expect(rt.status).toBe(200);
    expect((await httpGet(`${token.url}/v2/`, { Authorization: `Bearer ${String(rt.body.access_token)}` })).status).toBe(200);
    const bad = await post({ grant_type: 'password', username: token.username!, password: 'nope', service: token.service!, scope });
    expect(bad.status).toBe(401);
  });
});

describe('fault proxy', () => {
  let proxy: FaultProxy;
  let blobPath: string;

  beforeAll(async () => {
    const pushed = await push(none, 'harness/proxied:v1');
    expect(pushed.code, pushed.stderr).toBe(0);
    proxy = await startFaultProxy(none.url);
    blobPath = `/v2/harness/proxied/blobs/${img.layerDigest}`;
  });
  afterAll(() => proxy?.stop());
  afterEach(() => {
    proxy.clearFaults();
    proxy.clearHits();
  });

  test('answers a configured 429 with Retry-After once, then passes through', async () => {
    proxy.addFault({ method: 'GET', pathRegex: /\/blobs\//, kind: 'status', status: 429, headers: { 'Retry-After': '1' } });
    const first = await fetch(proxy.url + blobPath);
    expect(first.status).toBe(429);
    expect(first.headers.get('retry-after')).toBe('1');
    expect(((await first.json()) as { errors: { code: string }[] }).errors[0].code).toBe('TOOMANYREQUESTS');
    const second = await fetch(proxy.url + blobPath);
    expect(second.status).toBe(200);
    expect(sha256(new Uint8Array(await second.arrayBuffer()))).toBe(img.layerDigest);
    expect(proxy.hits(/\/blobs\//).map((h) => [h.status, h.fault])).toEqual([
      [429, 'status'],
      [200, undefined],
    ]);
  });

  test('matches on method and applies a fault the configured number of times', async () => {
    const handle = proxy.addFault({ method: 'HEAD', pathRegex: '/blobs/', kind: 'status', status: 500, times: 2 });
    expect((await fetch(proxy.url + blobPath)).status).toBe(200); // GET: not matched
    expect((await fetch(proxy.url + blobPath, { method: 'HEAD' })).status).toBe(500);
    expect((await fetch(proxy.url + blobPath, { method: 'HEAD' })).status).toBe(500);
    expect(handle.remaining()).toBe(0);
    const ok = await fetch(proxy.url + blobPath, { method: 'HEAD' });
    expect(ok.status).toBe(200);
    expect(Number(ok.headers.get('content-length'))).toBe(img.layerSize);
  });

  test('corrupt flips response bytes but keeps the length', async () => {
    proxy.addFault({ method: 'GET', pathRegex: /\/blobs\/sha256:/, kind: 'corrupt' });
    const bad = await fetch(proxy.url + blobPath);
    expect(bad.status).toBe(200);
    const badBody = new Uint8Array(await bad.arrayBuffer());
    expect(Number(bad.headers.get('content-length'))).toBe(img.layerSize);
    expect(badBody.length).toBe(img.layerSize);
    expect(sha256(badBody)).not.toBe(img.layerDigest);
    const good = new Uint8Array(await (await fetch(proxy.url + blobPath)).arrayBuffer());
    expect(sha256(good)).toBe(img.layerDigest);
  });

  test('drop sends headers and the first N body bytes, then cuts the connection', async () => {
    // A blob big enough that the cut cannot go unnoticed.
    const data = randomBytes(2 * 1024 * 1024);
    const digest = await uploadBlob(proxy.url, 'harness/dropped', data);
    proxy.addFault({ method: 'GET', pathRegex: /dropped\/blobs\//, kind: 'drop', afterBytes: 1000 });
    const got = await getCounting(`${proxy.url}/v2/harness/dropped/blobs/${digest}`);
    expect(got.status).toBe(200);
    expect(got.contentLength).toBe(data.length);
    expect(got.bytes).toBe(1000);
    expect(got.error).toBeDefined();
    const again = await getCounting(`${proxy.url}/v2/harness/dropped/blobs/${digest}`);
    expect(again.error).toBeUndefined();
    expect(again.bytes).toBe(data.length);
  });

  test('delay holds a request back; reset closes the connection without an answer', async () => {
    proxy.addFault({ pathRegex: /^\/v2\/$/, kind: 'delay', ms: 400 });
    const t0 = performance.now();
    expect((await fetch(`${proxy.url}/v2/`)).status).toBe(200);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(380);
    proxy.addFault({ pathRegex: /^\/v2\/$/, kind: 'reset' });
    await expect(httpGet(`${proxy.url}/v2/`)).rejects.toThrow();
    expect(proxy.hits(/^\/v2\/$/).map((h) => h.status)).toEqual([200, 0]);
  });

  test('streams a large blob upload and download, keeping uploads on the proxy via Location rewriting', async () => {
    const data = randomBytes(24 * 1024 * 1024);
    const digest = await uploadBlob(proxy.url, 'harness/big', data);
    // The upload URL the registry handed out was rewritten, so the PUT came through the proxy.
    const puts = proxy.hits(/\/harness\/big\/blobs\/uploads\//).filter((h) => h.method === 'PUT');
    expect(puts.map((h) => h.status)).toEqual([201]);
    const post = proxy.hits(/\/harness\/big\/blobs\/uploads\/$/)[0];
    expect(String(post.responseHeaders.location)).toMatch(new RegExp(`^${proxy.url}/v2/harness/big/blobs/uploads/`));
    const got = await getCounting(`${proxy.url}/v2/harness/big/blobs/${digest}`, true);
    expect(got.bytes).toBe(data.length);
    expect(got.digest).toBe(digest);
  });

  test('skopeo copies through the proxy end to end', async () => {
    const pushed = await push({ host: proxy.host }, 'harness/via-proxy:v1');
    expect(pushed.code, pushed.stderr).toBe(0);
    const methods = new Set(proxy.hits(/\/harness\/via-proxy\//).map((h) => h.method));
    // skopeo uploads with POST + PATCH + PUT; all of them must have reached the proxy.
    expect([...methods]).toEqual(expect.arrayContaining(['POST', 'PATCH', 'PUT']));
    const got = await inspectDigest(proxy.host, 'harness/via-proxy:v1');
    expect(got.digest).toBe(img.manifestDigest);
  });
});

/** Monolithic blob upload (POST, then PUT to the returned Location), streaming the body. */
async function uploadBlob(base: string, repo: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const start = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  expect(start.status).toBe(202);
  const location = new URL(start.headers.get('location')!, base);
  location.searchParams.set('digest', digest);
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(
      location,
      { method: 'PUT', agent: false, headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': data.length } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    // Write in 1 MiB pieces so the body really streams through the proxy.
    for (let i = 0; i < data.length; i += 1 << 20) req.write(data.subarray(i, i + (1 << 20)));
    req.end();
  });
  expect(status).toBe(201);
  return digest;
}

/** GETs a URL, counting body bytes (and hashing them if asked) until the end or an error. */
function getCounting(url: string, hash = false): Promise<{ status: number; contentLength: number; bytes: number; digest?: string; error?: Error }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      const h = hash ? createHash('sha256') : undefined;
      let bytes = 0;
      let done = false;
      const finish = (error?: Error) => {
        if (done) return;
        done = true;
        resolve({
          status: res.statusCode ?? 0,
          contentLength: Number(res.headers['content-length']),
          bytes,
          digest: h ? `sha256:${h.digest('hex')}` : undefined,
          error,
        });
      };
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        h?.update(c);
      });
      res.on('end', () => finish());
      res.on('error', (e) => finish(e));
      res.on('aborted', () => finish(new Error('aborted')));
      res.on('close', () => {
        if (!res.complete) finish(new Error('connection closed before the body was complete'));
      });
    });
    req.on('error', reject);
    req.end();
  });
}
