/**
 * Bad input, from the user and from registries: malformed references, oversize manifests, unknown
 * media types, schema 1, manifests whose bytes do not match the digest asked for, and registries
 * that are not there. Hostile answers are served by the fault proxy in front of a real registry.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { encodeManifest } from '../../src/oci/manifest.js';
import { MediaType } from '../../src/oci/mediatype.js';
import { parseReference } from '../../src/oci/reference.js';
import { RegistryClient } from '../../src/registry/client.js';
import { getManifest, headManifest } from '../../src/registry/manifests.js';
import { parseImageName } from '../../src/transports/index.js';
import { StevedoreError } from '../../src/util/errors.js';
import { makeRandomImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { freePort } from '../../hack/lib/harness/net.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';

async function caught(p: Promise<unknown> | (() => unknown)): Promise<StevedoreError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return err as StevedoreError;
  }
  throw new Error('expected a rejection');
}

describe('parseReference', () => {
  it.each([
    ['busybox', { registry: 'docker.io', repository: 'library/busybox' }],
    ['busybox:1.36', { registry: 'docker.io', repository: 'library/busybox', tag: '1.36' }],
    ['docker.io/busybox', { registry: 'docker.io', repository: 'library/busybox' }],
    ['index.docker.io/busybox:latest', { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' }],
    ['registry-1.docker.io/user/app', { registry: 'docker.io', repository: 'user/app' }],
    ['user/app', { registry: 'docker.io', repository: 'user/app' }],
    ['localhost:5000/a', { registry: 'localhost:5000', repository: 'a' }],
    ['localhost/a', { registry: 'localhost', repository: 'a' }],
    ['[::1]:5000/a', { registry: '[::1]:5000', repository: 'a' }],
    ['[::1]:5000/a:v1', { registry: '[::1]:5000', repository: 'a', tag: 'v1' }],
    ['127.0.0.1:5000/team/app:1.0', { registry: '127.0.0.1:5000', repository: 'team/app', tag: '1.0' }],
    ['quay.io/a/b/c@sha256:' + 'a'.repeat(64), { registry: 'quay.io', repository: 'a/b/c', digest: 'sha256:' + 'a'.repeat(64) }],
    ['ghcr.io/x/y:t@sha256:' + 'b'.repeat(64), { registry: 'ghcr.io', repository: 'x/y', tag: 't', digest: 'sha256:' + 'b'.repeat(64) }],
    ['a__b/c-d.e', { registry: 'docker.io', repository: 'a__b/c-d.e' }],
  ])('%s parses', (input, want) => {
    expect(parseReference(input)).toEqual(want);
  });

  it.each([
    ['', /empty/],
    ['   ', /empty/],
    ['busybox/Foo', /lowercase/],
    ['UPPER', /lowercase/],
    ['quay.io/Team/app', /lowercase/],
    ['app:bad tag', /malformed tag/],
    ['app:-dash', /malformed tag/],
    ['app:' + 't'.repeat(129), /malformed tag/],
    ['app:', /malformed tag/],
    ['app@sha256:abc', /invalid reference/],
    ['app@md5:' + 'a'.repeat(32), /invalid reference/],
    ['app@sha256:' + 'G'.repeat(64), /invalid reference/],
    ['app@', /invalid reference/],
    ['quay.io/' + 'a'.repeat(250), /longer than 255/],
    ['localhost:99999/a', /port out of range/],
    ['-bad.example.com/a', /malformed registry host/],
    ['quay.io//a', /malformed repository component/],
    ['quay.io/a/', /malformed repository component/],
    [':tag', /missing repository/],
  ])('%j is refused', (input, msg) => {
    let err: unknown;
    try {
      parseReference(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StevedoreError);
    expect((err as StevedoreError).code).toBe('INVALID_INPUT');
    expect((err as Error).message).toMatch(msg);
  });

  it('docker:// image names are parsed the same way and bad ones fail as INVALID_INPUT', () => {
    expect(String(parseImageName('docker://busybox'))).toBe('docker://docker.io/library/busybox');
    expect(() => parseImageName('docker://Busybox/App')).toThrow(/lowercase/);
    expect(() => parseImageName('docker:busybox')).toThrow(/expected docker:\/\//);
  });
});

describe('hostile or broken registries', () => {
  const temps = new TempDirs();
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let client: RegistryClient;
  let image: FixtureImage;

  beforeAll(async () => {
    [reg, image] = await Promise.all([
      startRegistry({ name: 'reg-bad-input' }),
      temps.make('img').then((dir) => makeRandomImage({ layers: 1, layerSize: 8 * 1024, layoutDir: dir })),
    ]);
    proxy = await startFaultProxy(reg.url);
    client = new RegistryClient({ registry: proxy.host });
    await copyReference(parseImageName(image.ociRef), parseImageName(`docker://${reg.host}/good/app:v1`));
  });

  afterEach(() => {
    proxy.clearFaults();
    proxy.clearHits();
  });

  afterAll(async () => {
    await client?.close();
    await proxy?.stop();
    await reg?.stop();
    await temps.cleanup();
  });

  const copyFrom = async (src: string) => copyReference(parseImageName(src), parseImageName(`oci:${await temps.make('out')}:x`));

  it('refuses a 5 MiB manifest as TOO_LARGE before reading it', async () => {
    const big = Buffer.alloc(5 * 1024 * 1024, 0x20);
    Buffer.from('{"schemaVersion":2,').copy(big, 0);
    proxy.addFault({
      method: 'GET',
      pathRegex: '/manifests/huge',
      kind: 'status',
      status: 200,
      body: big,
      headers: { 'Content-Type': MediaType.OciManifest },
      times: Infinity,
    });
    const err = await caught(getManifest(client, 'good/app', 'huge'));
    expect(err.code).toBe('TOO_LARGE');
    expect(err.message).toMatch(/4194304-byte limit/);
    const viaCopy = await caught(copyFrom(`docker://${proxy.host}/good/app:huge`));
    expect(viaCopy.code).toBe('TOO_LARGE');
  });

  it('refuses a manifest of an unknown media type with a clear error', async () => {
    const doc = { schemaVersion: 2, mediaType: 'application/vnd.example.thing.v1+json', things: [] };
    proxy.addFault({
      method: 'GET',
      pathRegex: '/manifests/odd',
      kind: 'status',
      status: 200,
      body: doc,
      headers: { 'Content-Type': 'application/vnd.example.thing.v1+json' },
    });
    const err = await caught(copyFrom(`docker://${proxy.host}/good/app:odd`));
    expect(err.code).toBe('INVALID_INPUT');
    expect(err.message).toContain('unsupported manifest media type "application/vnd.example.thing.v1+json"');
  });

  it('refuses a Docker schema 1 manifest', async () => {
    const doc = { schemaVersion: 1, name: 'good/app', tag: 'old', architecture: 'amd64', fsLayers: [], history: [], signatures: [] };
    proxy.addFault({
      method: 'GET',
      pathRegex: '/manifests/old',
      kind: 'status',
      status: 200,
      body: doc,
      headers: { 'Content-Type': MediaType.DockerSchema1Signed },
    });
    const err = await caught(copyFrom(`docker://${proxy.host}/good/app:old`));
    expect(err.code).toBe('INVALID_INPUT');
    expect(err.message).toMatch(/schema 1/);
  });

  it('refuses manifest bytes that do not hash to the digest they were asked for', async () => {
    const digest = image.manifest.digest;
    // Same document, different bytes (pretty-printed): a different digest.
    const other = Buffer.from(JSON.stringify(JSON.parse(image.manifest.bytes.toString()), null, 2));
    proxy.addFault({
      method: 'GET',
      pathRegex: `/manifests/${digest}`,
      kind: 'status',
      status: 200,
      body: other,
      headers: { 'Content-Type': MediaType.OciManifest, 'Docker-Content-Digest': digest },
    });
    const err = await caught(copyFrom(`docker://${proxy.host}/good/app@${digest}`));
    expect(err.code).toBe('DIGEST_MISMATCH');
    expect(err.message).toContain(digest);
    // By tag, the registry's own Docker-Content-Digest claim is checked against the bytes.
    proxy.addFault({
      method: 'GET',
      pathRegex: '/manifests/v1',
      kind: 'status',
      status: 200,
      body: other,
      headers: { 'Content-Type': MediaType.OciManifest, 'Docker-Content-Digest': digest },
    });
    const byTag = await caught(getManifest(client, 'good/app', 'v1'));
    expect(byTag.code).toBe('DIGEST_MISMATCH');
    // And unmolested, the same reference works.
    expect((await getManifest(client, 'good/app', digest)).bytes.equals(image.manifest.bytes)).toBe(true);
  });

  it('a copy to a digest reference refuses a manifest with another digest', async () => {
    const wrong = encodeManifest({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] }).digest;
    const err = await caught(copyReference(parseImageName(`docker://${reg.host}/good/app:v1`), parseImageName(`docker://${reg.host}/pinned/app@${wrong}`)));
    expect(err.code).toBe('DIGEST_MISMATCH');
    expect(await headManifest(client, 'pinned/app', image.manifest.digest)).toBeUndefined();
  });

  it('a registry on a closed port is REGISTRY_UNREACHABLE, naming the host', async () => {
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const started = Date.now();
    const err = await caught(copyFrom(`docker://${host}/any/app:v1`));
    expect(err.code).toBe('REGISTRY_UNREACHABLE');
    expect(err.message).toContain(host);
    // Refused connections are not worth backing off for.
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
