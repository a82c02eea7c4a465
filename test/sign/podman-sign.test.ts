/**
 * podman 4.3's `image sign` and Stevedore's write the same lookaside layout: a signature podman
 * made admits the image under Stevedore's signedBy, and one Stevedore made lands where podman puts
 * its own.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { parseReference } from '../../src/oci/reference.js';
import { evaluatePolicy } from '../../src/policy/image-policy.js';
import { parsePolicy } from '../../src/policy/parse.js';
import { secretKeyFromGpgHome } from '../../src/sign/gpg-keys.js';
import { signImageWithGpg } from '../../src/sign/gpg-image.js';
import { parseImageName } from '../../src/transports/index.js';
import { makeRandomImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { runCommand } from '../../hack/lib/harness/procs.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { makeGpgHome, type GpgHome } from './gpg-home.js';

const temps = new TempDirs();
let reg: TestRegistry;
let home: GpgHome;
let dir: string;
let image: FixtureImage;

beforeAll(async () => {
  [reg, home] = await Promise.all([startRegistry({ name: 'podman-sign' }), makeGpgHome('podman-signer')]);
  dir = await temps.make('podman-sign');
  image = await makeRandomImage({ layers: 1, layerSize: 1024, layoutDir: join(dir, 'img') });
  await copyReference(parseImageName(image.ociRef), parseImageName(`docker://${reg.host}/team/app:1`));
}, 180_000);

afterAll(async () => {
  await reg?.stop();
  await home?.remove();
  await temps.cleanup();
});

describe('podman image sign and stevedore image sign share the lookaside layout', () => {
  it('podman signs into --directory; stevedore admits the image with a registries.d pointing there, and signs next to it', async () => {
    const conf = join(dir, 'registries.conf');
    await writeFile(conf, `[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`);
    const sigs = join(dir, 'sigs');
    await mkdir(sigs); // podman wants the directory to exist
    const p = await runCommand(
      'podman',
      [
        '--root',
        join(dir, 'proot'),
        '--runroot',
        join(dir, 'prun'),
        '--storage-driver',
        'vfs',
        'image',
        'sign',
        '--sign-by',
        home.fingerprint,
        '--directory',
        sigs,
        `docker://${reg.host}/team/app:1`,
      ],
      { env: { ...home.env, CONTAINERS_REGISTRIES_CONF: conf }, timeoutMs: 120_000 },
    );
    expect(p.code, p.stderr).toBe(0);
    const at = join(sigs, 'team', `app@${image.descriptor.digest.replace(':', '=')}`);
    expect(await readdir(at)).toEqual(['signature-1']);
    const registriesDir = join(dir, 'registries.d');
    await mkdir(registriesDir);
    await writeFile(join(registriesDir, 'p.yaml'), `default-docker:\n  lookaside: file://${sigs}\n`);
    const policy = parsePolicy(JSON.stringify({ default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: home.publicKeyFile }] }));
    const d = await evaluatePolicy(policy, `docker://${reg.host}/team/app:1`, { registriesDir });
    expect(d.allowed, d.reason).toBe(true);
    // Ours goes beside podman's, as the next number.
    const ours = await signImageWithGpg(parseReference(`${reg.host}/team/app:1`), await secretKeyFromGpgHome(home.fingerprint, { gnupgHome: home.dir }), {
      directory: sigs,
    });
    expect(ours.location).toBe(`file://${at}/signature-2`);
    expect((await readdir(at)).filter((n) => !n.startsWith('.')).sort()).toEqual(['signature-1', 'signature-2']);
  });
});
