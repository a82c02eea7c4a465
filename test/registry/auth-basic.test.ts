/**
 * HTTP Basic authentication (htpasswd) against a real registry: credentials given directly or
 * found in an auth file work; none, or a wrong password, fail with a clear AuthError.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../src/registry/client.js';
import { AuthError } from '../../src/registry/errors.js';
import { headManifest } from '../../src/registry/manifests.js';
import { makeRandomImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { skopeo } from '../harness/skopeo.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { copy, caught } from './helpers.js';

const temps = new TempDirs();
let reg: TestRegistry;
let image: FixtureImage;
let emptyAuthFile: string;

beforeAll(async () => {
  const dir = await temps.make('auth-basic');
  [reg, image] = await Promise.all([
    startRegistry({ auth: 'basic', name: 'reg-basic' }),
    makeRandomImage({ layers: 2, layerSize: 32 * 1024, layoutDir: join(dir, 'img') }),
  ]);
  emptyAuthFile = join(dir, 'empty-auth.json');
  await writeFile(emptyAuthFile, JSON.stringify({ auths: {} }));
});

afterAll(async () => {
  await reg?.stop();
  await temps.cleanup();
});

describe('basic auth', () => {
  it('copies with credentials, and skopeo with the same credentials sees the image', async () => {
    const creds = { username: reg.username!, password: reg.password! };
    const result = await copy(image.ociRef, `docker://${reg.host}/team/app:1`, { destContext: { credentials: creds } });
    expect(result.digest).toBe(image.manifest.digest);
    expect(result.blobsCopied).toBe(3);
    const inspected = await skopeo(['inspect', '--tls-verify=false', '--creds', `${reg.username}:${reg.password}`, `docker://${reg.host}/team/app:1`]);
    expect(inspected.code, inspected.stderr).toBe(0);
    expect(JSON.parse(inspected.stdout).Digest).toBe(image.manifest.digest);
  });

  it('without credentials fails with AuthError: authentication required, and a login hint', async () => {
    const dir = await temps.make('anon');
    const err = await caught(copy(`docker://${reg.host}/team/app:1`, `oci:${dir}:x`, { srcContext: { authFile: emptyAuthFile } }));
    expect(err).toBeInstanceOf(AuthError);
    expect(err.code).toBe('UNAUTHORIZED');
    expect(err.message).toContain(reg.host);
    expect(err.message).toMatch(/authentication required/);
    expect(err.message).toContain(`stevedore login ${reg.host}`);
    // Pushing anonymously is refused the same way, before any blob is written.
    const push = await caught(copy(image.ociRef, `docker://${reg.host}/team/anon:1`, { destContext: { authFile: emptyAuthFile } }));
    expect(push).toBeInstanceOf(AuthError);
  });

  it('with a wrong password fails with an AuthError naming the user', async () => {
    const dir = await temps.make('wrong');
    const err = await caught(
      copy(`docker://${reg.host}/team/app:1`, `oci:${dir}:x`, { srcContext: { credentials: { username: reg.username!, password: 'not-the-password' } } }),
    );
    expect(err).toBeInstanceOf(AuthError);
    expect(err.message).toContain(reg.host);
    expect(err.message).toContain(`"${reg.username}"`);
    expect(err.message).toMatch(/rejected/);
  });

  it('where auth files are never read (the controller, --no-creds), a refusal does not suggest stevedore login', async () => {
    const dir = await temps.make('no-ambient');
    const wrong = await caught(
      copy(`docker://${reg.host}/team/app:1`, `oci:${dir}:x`, {
        srcContext: { ambientCredentials: false, credentials: { username: reg.username!, password: 'not-the-password' } },
      }),
    );
    expect(wrong.message).toMatch(/were rejected/);
    expect(wrong.message).not.toContain('stevedore login');
    const none = await caught(copy(`docker://${reg.host}/team/app:1`, `oci:${dir}:y`, { srcContext: { ambientCredentials: false } }));
    expect(none.message).toMatch(/authentication required .*; give credentials for it$/);
    expect(none.message).not.toContain('stevedore login');
  });

  it('finds credentials in an auth file (auths keyed by host:port)', async () => {
    const file = join(await temps.make('authfile'), 'auth.json');
    await writeFile(file, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${reg.username}:${reg.password}`).toString('base64') } } }));
    const result = await copy(image.ociRef, `docker://${reg.host}/via/authfile:1`, { destContext: { authFile: file } });
    expect(result.digest).toBe(image.manifest.digest);
    const client = new RegistryClient({ registry: reg.host, credentials: { username: reg.username!, password: reg.password! } });
    try {
      expect((await headManifest(client, 'via/authfile', '1'))?.digest).toBe(image.manifest.digest);
    } finally {
      await client.close();
    }
  });
});
