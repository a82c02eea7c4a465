/**
 * Bearer-token authentication against a real registry (distribution 2.8) and the harness's token
 * issuer: push and pull with credentials, token caching, anonymous and wrong-password refusals,
 * credentials from an auth file, and cross-repository mounts that ask for pull on the source.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciLayout } from '../../src/oci/layout.js';
import { RegistryClient } from '../../src/registry/client.js';
import { headManifest } from '../../src/registry/manifests.js';
import type { TransportContext } from '../../src/transports/types.js';
import { StevedoreError } from '../../src/util/errors.js';
import { makeRandomImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { copy, caught } from './helpers.js';

const temps = new TempDirs();
let reg: TestRegistry;
let image: FixtureImage;
let emptyAuthFile: string;
let ctx: TransportContext;

beforeAll(async () => {
  const dir = await temps.make('auth-token');
  [reg, image] = await Promise.all([
    startRegistry({
      auth: 'token',
      name: 'reg-token',
      // Users get what they ask for; anonymous callers may pull from public/* and nothing else.
      tokenGrant: (user, req) => (user !== undefined ? req.actions : req.name.startsWith('public/') ? req.actions.filter((a) => a === 'pull') : []),
    }),
    makeRandomImage({ layers: 3, layerSize: 64 * 1024, layoutDir: join(dir, 'img') }),
  ]);
  // An explicit, empty auth file: credentials stored on this machine must not leak into anonymous cases.
  emptyAuthFile = join(dir, 'empty-auth.json');
  await writeFile(emptyAuthFile, JSON.stringify({ auths: {} }));
  ctx = { credentials: { username: reg.username!, password: reg.password! } };
});

afterAll(async () => {
  await reg?.stop();
  await temps.cleanup();
});

describe('token auth', () => {
  it('pushes a 4-blob image with a handful of cached tokens, and pulls it back', async () => {
    const before = reg.tokenRequests();
    const pushed = await copy(image.ociRef, `docker://${reg.host}/team/app:1`, { destContext: ctx });
    expect(pushed.digest).toBe(image.manifest.digest);
    expect(pushed.blobsCopied).toBe(4);
    const pushTokens = reg.tokenRequests() - before;
    expect(pushTokens).toBeGreaterThanOrEqual(1);
    expect(pushTokens).toBeLessThanOrEqual(4);
    expect(
      reg
        .tokenLog()
        .slice(before)
        .every((e) => e.status === 200 && e.user === reg.username),
    ).toBe(true);

    const mid = reg.tokenRequests();
    const dir = await temps.make('pulled');
    const pulled = await copy(`docker://${reg.host}/team/app:1`, `oci:${dir}:1`, { srcContext: ctx });
    expect(pulled.digest).toBe(image.manifest.digest);
    expect(pulled.blobsCopied).toBe(4);
    expect(reg.tokenRequests() - mid).toBeLessThanOrEqual(4);
    const layout = await OciLayout.open(dir);
    expect((await layout.resolve('1')).digest).toBe(image.manifest.digest);
  });

  it('one client reuses its token across many requests', async () => {
    const client = new RegistryClient({ registry: reg.host, credentials: ctx.credentials });
    try {
      const before = reg.tokenRequests();
      for (let i = 0; i < 5; i++) expect((await headManifest(client, 'team/app', '1'))?.digest).toBe(image.manifest.digest);
      await Promise.all(Array.from({ length: 5 }, () => headManifest(client, 'team/app', '1')));
      expect(reg.tokenRequests() - before).toBe(1);
    } finally {
      await client.close();
    }
  });

  it('refuses an anonymous pull of a private repository with a clear AuthError', async () => {
    const dir = await temps.make('anon');
    const err = await caught(copy(`docker://${reg.host}/team/app:1`, `oci:${dir}:x`, { srcContext: { authFile: emptyAuthFile } }));
    expect(err).toBeInstanceOf(StevedoreError);
    expect(err.code).toBe('UNAUTHORIZED');
    expect(err.message).toContain(reg.host);
    expect(err.message).toMatch(/authentication required/);
    expect(err.message).toMatch(/login/);
  });

  it('pulls a public repository anonymously, but refuses an anonymous push to it', async () => {
    await copy(image.ociRef, `docker://${reg.host}/public/app:1`, { destContext: ctx });
    const dir = await temps.make('public');
    const before = reg.tokenRequests();
    const pulled = await copy(`docker://${reg.host}/public/app:1`, `oci:${dir}:1`, { srcContext: { authFile: emptyAuthFile } });
    expect(pulled.digest).toBe(image.manifest.digest);
    expect(
      reg
        .tokenLog()
        .slice(before)
        .every((e) => e.user === undefined),
    ).toBe(true);
    const err = await caught(copy(image.ociRef, `docker://${reg.host}/public/app:2`, { destContext: { authFile: emptyAuthFile } }));
    expect(err.code).toBe('UNAUTHORIZED');
    expect(err.message).toMatch(/authentication required/);
    const client = new RegistryClient({ registry: reg.host, credentials: ctx.credentials });
    try {
      expect(await headManifest(client, 'public/app', '2')).toBeUndefined();
    } finally {
      await client.close();
    }
  });

  it('refuses a wrong password with an error naming the user', async () => {
    const dir = await temps.make('wrong');
    const err = await caught(
      copy(`docker://${reg.host}/team/app:1`, `oci:${dir}:x`, { srcContext: { credentials: { username: reg.username!, password: 'wrong' } } }),
    );
    expect(err.code).toBe('UNAUTHORIZED');
    expect(err.message).toContain(reg.host);
    expect(err.message).toContain(`"${reg.username}"`);
    expect(err.message).toMatch(/failed|rejected/);
  });

  it('finds credentials in an auth file passed as ctx.authFile', async () => {
    const file = join(await temps.make('authfile'), 'auth.json');
    const auth = Buffer.from(`${reg.username}:${reg.password}`).toString('base64');
    await writeFile(file, JSON.stringify({ auths: { [reg.host]: { auth } } }));
    const result = await copy(image.ociRef, `docker://${reg.host}/via/authfile:1`, { destContext: { authFile: file } });
    expect(result.digest).toBe(image.manifest.digest);
    const dir = await temps.make('authfile-pull');
    const back = await copy(`docker://${reg.host}/via/authfile:1`, `oci:${dir}:1`, { srcContext: { authFile: file } });
    expect(back.digest).toBe(image.manifest.digest);
  });

  it('mounts blobs across repositories, asking the token service for pull on the source', async () => {
    const before = reg.tokenRequests();
    const result = await copy(`docker://${reg.host}/team/app:1`, `docker://${reg.host}/other/mirror:1`, { srcContext: ctx, destContext: ctx });
    expect(result.digest).toBe(image.manifest.digest);
    expect(result.blobsCopied).toBe(0);
    expect(result.blobsReused).toBe(4);
    const log = reg.tokenLog().slice(before);
    const mountRequest = log.find(
      (e) => e.scopes.includes('repository:team/app:pull') && e.scopes.some((s) => s.startsWith('repository:other/mirror:') && s.includes('push')),
    );
    expect(mountRequest, JSON.stringify(log.map((e) => e.scopes))).toBeDefined();
    expect(mountRequest!.granted.map((g) => g.name).sort()).toEqual(['other/mirror', 'team/app']);
    expect(reg.tokenRequests() - before).toBeLessThanOrEqual(4);
    const client = new RegistryClient({ registry: reg.host, credentials: ctx.credentials });
    try {
      expect((await headManifest(client, 'other/mirror', '1'))?.digest).toBe(image.manifest.digest);
    } finally {
      await client.close();
    }
  });
});
