/**
 * The ImageMirror policy path with GPG: a policy from a Secret whose keyPaths name Secret keys
 * (resolved by the controller into one keyData: an armored and a binary key concatenated), then
 * the sync engine the ImageMirror reconciler runs, with signatures in a file:// lookaside. The
 * signed tag is mirrored; the unsigned and the stranger-signed tags are denied and not written.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveKeyPaths } from '../../src/controllers/imagemirror-policy.js';
import { copyReference } from '../../src/copy/copy.js';
import { sync } from '../../src/copy/sync.js';
import { parseSyncConfig } from '../../src/copy/sync-config.js';
import { parseReference } from '../../src/oci/reference.js';
import { parsePolicy } from '../../src/policy/parse.js';
import { RegistryClient } from '../../src/registry/client.js';
import { headManifest } from '../../src/registry/manifests.js';
import { secretKeyFromGpgHome } from '../../src/sign/gpg-keys.js';
import { signImageWithGpg } from '../../src/sign/gpg-image.js';
import { parseImageName } from '../../src/transports/index.js';
import { makeRandomImage } from '../../hack/lib/harness/images.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { makeGpgHome, type GpgHome } from '../sign/gpg-home.js';

const temps = new TempDirs();
let reg: TestRegistry;
let signer: GpgHome;
let stranger: GpgHome;
let extra: GpgHome;
let registriesDir: string;

beforeAll(async () => {
  [reg, signer, stranger, extra] = await Promise.all([
    startRegistry({ name: 'mirror-gpg' }),
    makeGpgHome('mirror-signer'),
    makeGpgHome('mirror-stranger'),
    makeGpgHome('mirror-extra'),
  ]);
  const dir = await temps.make('mirror-gpg');
  registriesDir = join(dir, 'registries.d');
  await mkdir(registriesDir);
  await writeFile(join(registriesDir, 'sigs.yaml'), `docker:\n  ${reg.host}:\n    lookaside: file://${join(dir, 'sigs')}\n`);
  for (const [i, tag] of ['signed', 'unsigned', 'stranger'].entries()) {
    const img = await makeRandomImage({ layers: 1, layerSize: 1024, layoutDir: join(dir, 'img'), ref: tag, seed: `mirror-${i}-${Date.now()}` });
    await copyReference(parseImageName(img.ociRef), parseImageName(`docker://${reg.host}/team/app:${tag}`));
  }
  const sign = async (tag: string, home: GpgHome) =>
    signImageWithGpg(parseReference(`${reg.host}/team/app:${tag}`), await secretKeyFromGpgHome(home.fingerprint, { gnupgHome: home.dir }), {
      registriesDir,
      directory: join(dir, 'sigs'),
    });
  await sign('signed', signer);
  await sign('stranger', stranger);
}, 180_000);

afterAll(async () => {
  await reg?.stop();
  await Promise.all([signer?.remove(), stranger?.remove(), extra?.remove()]);
  await temps.cleanup();
});

describe('ImageMirror policy with signedBy (GPG)', () => {
  it('mirrors the GPG-signed tag and denies the unsigned and the wrongly signed ones', async () => {
    const b64 = async (f: string) => (await readFile(f)).toString('base64');
    const secret = {
      'policy.json': Buffer.from(
        JSON.stringify({
          default: [{ type: 'reject' }],
          transports: {
            docker: {
              [`${reg.host}/team`]: [
                { type: 'signedBy', keyType: 'GPGKeys', keyPaths: ['extra.asc', 'signer.gpg'], signedIdentity: { type: 'matchRepository' } },
              ],
            },
          },
        }),
      ).toString('base64'),
      'extra.asc': await b64(extra.armoredPublicKeyFile),
      'signer.gpg': await b64(signer.publicKeyFile),
    };
    const policy = resolveKeyPaths(parsePolicy(Buffer.from(secret['policy.json'], 'base64').toString('utf8')), secret, 'Secret ns/policy');
    const target = { kind: 'registry' as const, registry: reg.host, prefix: 'mirror' };
    const report = await sync(parseSyncConfig({ [reg.host]: { 'tls-verify': false, images: { 'team/app': ['signed', 'unsigned', 'stranger'] } } }), target, {
      policy,
      sourceContext: { registriesDir },
      keepGoing: true,
    });
    const byTag = Object.fromEntries(report.items.map((i) => [i.tag, i]));
    expect(byTag.signed?.action).toBe('copied');
    expect(byTag.unsigned?.action).toBe('failed');
    expect(byTag.unsigned?.error).toMatch(/^policy denied: .*no signature exists/);
    expect(byTag.stranger?.action).toBe('failed');
    expect(byTag.stranger?.error).toMatch(/^policy denied: .*not among the trusted keys/);
    const client = new RegistryClient({ registry: reg.host });
    try {
      expect(await headManifest(client, 'mirror/team/app', 'signed')).toBeDefined();
      expect(await headManifest(client, 'mirror/team/app', 'unsigned')).toBeUndefined();
      expect(await headManifest(client, 'mirror/team/app', 'stranger')).toBeUndefined();
    } finally {
      await client.close();
    }
  });
});
