/**
 * Policy `signedBy` (GPG simple signing) on a real registry, with signatures in lookaside storage
 * configured by registries.d: made by skopeo 1.9 (`copy --sign-by`) and checked by Stevedore, made
 * by Stevedore and checked by skopeo (`copy --policy`), every key form and signedIdentity variant,
 * file:// and http:// lookaside, dir: images, and the refusals (unsigned, wrong key, wrong identity).
 */
import { createServer, type Server } from 'node:http';
import { readFile, writeFile, mkdir, readdir } from 'node:fs/promises';
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
import { LOOPBACK } from '../../hack/lib/harness/net.js';
import { runCommand } from '../../hack/lib/harness/procs.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { makeGpgHome, type GpgHome } from '../sign/gpg-home.js';

const temps = new TempDirs();
let reg: TestRegistry;
let signer: GpgHome;
let stranger: GpgHome;
let dir: string;
let image: FixtureImage;
let other: FixtureImage;
let n = 0;

/** A registries.d directory whose default-docker lookaside (and staging) is a fresh file:// directory. */
async function lookasideConfig(base?: string): Promise<{ registriesDir: string; lookaside: string }> {
  const d = join(dir, `case-${++n}`);
  const registriesDir = join(d, 'registries.d');
  const lookaside = join(d, 'lookaside');
  await mkdir(registriesDir, { recursive: true });
  await mkdir(lookaside, { recursive: true });
  await writeFile(
    join(registriesDir, 'default.yaml'),
    `default-docker:\n  lookaside: ${base ?? `file://${lookaside}`}\n  lookaside-staging: file://${lookaside}\n`,
  );
  return { registriesDir, lookaside };
}

function signedBy(extra: Record<string, unknown>, keyPath = signer.publicKeyFile) {
  return parsePolicy(
    JSON.stringify({ default: [{ type: 'reject' }], transports: { docker: { [reg.host]: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath, ...extra }] } } }),
  );
}

async function pushImage(img: FixtureImage, dest: string): Promise<void> {
  await copyReference(parseImageName(img.ociRef), parseImageName(`docker://${reg.host}/${dest}`));
}

async function gpgSign(refText: string, registriesDir: string, home = signer, identity?: string) {
  const key = await secretKeyFromGpgHome(home.fingerprint, { gnupgHome: home.dir });
  return signImageWithGpg(parseReference(refText), key, { registriesDir, identity });
}

beforeAll(async () => {
  [reg, signer, stranger] = await Promise.all([startRegistry({ name: 'signed-by' }), makeGpgHome('policy-signer'), makeGpgHome('policy-stranger')]);
  dir = await temps.make('signed-by');
  image = await makeRandomImage({ layers: 1, layerSize: 2048, layoutDir: join(dir, 'img'), ref: 'one' });
  other = await makeRandomImage({ layers: 1, layerSize: 2048, layoutDir: join(dir, 'img'), ref: 'two' });
  await pushImage(image, 'team/app:1');
  await pushImage(other, 'team/unsigned:1');
}, 180_000);

afterAll(async () => {
  await reg?.stop();
  await Promise.all([signer?.remove(), stranger?.remove()]);
  await temps.cleanup();
});

describe('signedBy with GPG keys and lookaside storage', () => {
  it('skopeo copy --sign-by writes <lookaside>/<repo>@sha256=<hex>/signature-1; Stevedore admits the image with that signature', async () => {
    const { registriesDir, lookaside } = await lookasideConfig();
    const res = await runCommand(
      'skopeo',
      [
        '--insecure-policy',
        '--registries.d',
        registriesDir,
        'copy',
        '--dest-tls-verify=false',
        '--sign-by',
        signer.fingerprint,
        image.ociRef,
        `docker://${reg.host}/team/skopeo:1`,
      ],
      { env: signer.env },
    );
    expect(res.code, res.stderr).toBe(0);
    const hex = image.descriptor.digest.slice('sha256:'.length);
    expect(await readdir(join(lookaside, 'team', `skopeo@sha256=${hex}`))).toEqual(['signature-1']);
    const ok = await evaluatePolicy(signedBy({}), `docker://${reg.host}/team/skopeo:1`, { registriesDir });
    expect(ok.allowed, ok.reason).toBe(true);
    // The copy engine's gate admits it too.
    const copied = await copyReference(parseImageName(`docker://${reg.host}/team/skopeo:1`), parseImageName(`oci:${join(dir, 'from-skopeo')}:ok`), {
      policy: signedBy({}),
      srcContext: { registriesDir },
    });
    expect(copied.digest).toBe(image.descriptor.digest);
    // The same signature does not vouch for another tag under the default matchRepoDigestOrExact...
    await pushImage(image, 'team/skopeo:2');
    const otherTag = await evaluatePolicy(signedBy({}), `docker://${reg.host}/team/skopeo:2`, { registriesDir });
    expect(otherTag.allowed).toBe(false);
    expect(otherTag.reason).toMatch(/signature identity ".*team\/skopeo:1" does not match .*team\/skopeo:2 under signedIdentity matchRepoDigestOrExact/);
    // ...but does for the image pulled by digest, and for the repository under matchRepository.
    expect((await evaluatePolicy(signedBy({}), `docker://${reg.host}/team/skopeo@${image.descriptor.digest}`, { registriesDir })).allowed).toBe(true);
    expect(
      (await evaluatePolicy(signedBy({ signedIdentity: { type: 'matchRepository' } }), `docker://${reg.host}/team/skopeo:2`, { registriesDir })).allowed,
    ).toBe(true);
  });

  it('Stevedore signs into lookaside-staging; skopeo copy --policy with signedBy admits it, and refuses an unsigned or wrongly signed image', async () => {
    const { registriesDir, lookaside } = await lookasideConfig();
    const signed = await gpgSign(`${reg.host}/team/app:1`, registriesDir);
    expect(signed.location).toBe(`file://${lookaside}/team/app@sha256=${image.descriptor.digest.slice(7)}/signature-1`);
    await pushImage(other, 'team/stranger:1');
    await gpgSign(`${reg.host}/team/stranger:1`, registriesDir, stranger);
    const policyFile = join(dir, 'skopeo-policy.json');
    await writeFile(
      policyFile,
      JSON.stringify({
        default: [{ type: 'insecureAcceptAnything' }],
        transports: { docker: { [reg.host]: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: signer.armoredPublicKeyFile }] } },
      }),
    );
    await mkdir(join(dir, 'skopeo-out'));
    const copy = (src: string) =>
      runCommand('skopeo', [
        '--policy',
        policyFile,
        '--registries.d',
        registriesDir,
        'copy',
        '--src-tls-verify=false',
        `docker://${reg.host}/${src}`,
        `dir:${join(dir, 'skopeo-out', src.replace(/[/:]/g, '-'))}`,
      ]);
    const admitted = await copy('team/app:1');
    expect(admitted.code, admitted.stderr).toBe(0);
    const unsigned = await copy('team/unsigned:1');
    expect(unsigned.code).not.toBe(0);
    expect(unsigned.stderr).toMatch(/signature was required, but no signature exists/i);
    const wrong = await copy('team/stranger:1');
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/not trusted|Invalid GPG signature|no public key|unknown key/i);
    // Stevedore agrees on all three.
    const policy = signedBy({}, signer.armoredPublicKeyFile);
    expect((await evaluatePolicy(policy, `docker://${reg.host}/team/app:1`, { registriesDir })).allowed).toBe(true);
    const u = await evaluatePolicy(policy, `docker://${reg.host}/team/unsigned:1`, { registriesDir });
    expect(u.reason).toMatch(/no signature exists/);
    const s = await evaluatePolicy(policy, `docker://${reg.host}/team/stranger:1`, { registriesDir });
    expect(s.allowed).toBe(false);
    expect(s.reason).toMatch(/not among the trusted keys/);
  });

  it('every key form: keyPath (binary or armored), keyPaths, keyData; a keyType other than GPGKeys is refused as not implemented', async () => {
    const { registriesDir } = await lookasideConfig();
    await gpgSign(`${reg.host}/team/app:1`, registriesDir);
    const at = `docker://${reg.host}/team/app:1`;
    const cases: Array<[string, Record<string, unknown>, boolean]> = [
      ['keyPath binary', { keyPath: signer.publicKeyFile }, true],
      ['keyPath armored', { keyPath: signer.armoredPublicKeyFile }, true],
      ['keyPaths with the signer second', { keyPaths: [stranger.publicKeyFile, signer.armoredPublicKeyFile] }, true],
      ['keyPaths without the signer', { keyPaths: [stranger.publicKeyFile] }, false],
      ['keyData', { keyData: (await readFile(signer.armoredPublicKeyFile)).toString('base64') }, true],
      ['keyData of a stranger', { keyData: (await readFile(stranger.publicKeyFile)).toString('base64') }, false],
    ];
    for (const [name, keys, want] of cases) {
      const policy = parsePolicy(JSON.stringify({ default: [{ type: 'signedBy', keyType: 'GPGKeys', ...keys }] }));
      const d = await evaluatePolicy(policy, at, { registriesDir });
      expect([name, d.allowed]).toEqual([name, want]);
    }
    const x509 = parsePolicy(JSON.stringify({ default: [{ type: 'signedBy', keyType: 'X509Certificates', keyPath: signer.publicKeyFile }] }));
    expect((await evaluatePolicy(x509, at, { registriesDir })).reason).toMatch(/keyType "X509Certificates" is not implemented/);
    const missing = parsePolicy(JSON.stringify({ default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: join(dir, 'nope.gpg') }] }));
    expect((await evaluatePolicy(missing, at, { registriesDir })).reason).toMatch(/cannot read GPG key file .*nope.gpg/);
  });

  it('every signedIdentity variant against the identity the signature claims', async () => {
    const host = reg.host;
    const cases: Array<{ identity: string; rule: Record<string, unknown>; image: string; want: boolean }> = [
      { identity: `${host}/team/app:1`, rule: { type: 'matchExact' }, image: `${host}/team/app:1`, want: true },
      { identity: `${host}/team/app:1`, rule: { type: 'matchExact' }, image: `${host}/team/app@${image.descriptor.digest}`, want: false },
      { identity: `${host}/team/app:1`, rule: { type: 'matchRepoDigestOrExact' }, image: `${host}/team/app@${image.descriptor.digest}`, want: true },
      { identity: `${host}/team/app:other`, rule: { type: 'matchRepoDigestOrExact' }, image: `${host}/team/app:1`, want: false },
      { identity: `${host}/team/app:other`, rule: { type: 'matchRepository' }, image: `${host}/team/app:1`, want: true },
      { identity: `${host}/elsewhere/app:1`, rule: { type: 'matchRepository' }, image: `${host}/team/app:1`, want: false },
      {
        identity: 'registry.example/prod/app:2',
        rule: { type: 'exactReference', dockerReference: 'registry.example/prod/app:2' },
        image: `${host}/team/app:1`,
        want: true,
      },
      {
        identity: 'registry.example/prod/app:3',
        rule: { type: 'exactReference', dockerReference: 'registry.example/prod/app:2' },
        image: `${host}/team/app:1`,
        want: false,
      },
      {
        identity: 'registry.example/prod/app:9',
        rule: { type: 'exactRepository', dockerRepository: 'registry.example/prod/app' },
        image: `${host}/team/app:1`,
        want: true,
      },
      {
        identity: 'registry.example/prod/other:9',
        rule: { type: 'exactRepository', dockerRepository: 'registry.example/prod/app' },
        image: `${host}/team/app:1`,
        want: false,
      },
      {
        identity: 'upstream.example/team/app:1',
        rule: { type: 'remapIdentity', prefix: `${host}/team`, signedPrefix: 'upstream.example/team' },
        image: `${host}/team/app:1`,
        want: true,
      },
      {
        identity: `${host}/team/app:1`,
        rule: { type: 'remapIdentity', prefix: `${host}/team`, signedPrefix: 'upstream.example/team' },
        image: `${host}/team/app:1`,
        want: false,
      },
    ];
    const got: boolean[] = [];
    for (const c of cases) {
      const { registriesDir } = await lookasideConfig();
      await gpgSign(`${host}/team/app:1`, registriesDir, signer, c.identity);
      const d = await evaluatePolicy(signedBy({ signedIdentity: c.rule }), `docker://${c.image}`, { registriesDir });
      got.push(d.allowed);
    }
    expect(got).toEqual(cases.map((c) => c.want));
  });

  it("a valid signature replayed into another image's lookaside directory is refused: it names the other digest", async () => {
    const { registriesDir, lookaside } = await lookasideConfig();
    await pushImage(other, 'team/replay:1');
    await gpgSign(`${reg.host}/team/replay:1`, registriesDir);
    // The attacker copies the signature of `other` (same repository and tag) into `image`'s directory.
    await pushImage(image, 'team/replay:2');
    const from = join(lookaside, 'team', `replay@${other.descriptor.digest.replace(':', '=')}`, 'signature-1');
    const toDir = join(lookaside, 'team', `replay@${image.descriptor.digest.replace(':', '=')}`);
    await mkdir(toDir, { recursive: true });
    await writeFile(join(toDir, 'signature-1'), await readFile(from));
    const d = await evaluatePolicy(signedBy({ signedIdentity: { type: 'matchRepository' } }), `docker://${reg.host}/team/replay:2`, { registriesDir });
    expect(d.allowed).toBe(false);
    expect(d.reason).toContain(`for digest ${other.descriptor.digest}, not ${image.descriptor.digest}`);
  });

  it('reads signatures from an http:// lookaside (loopback), and stops a lookaside that never ends', async () => {
    const { registriesDir: stage, lookaside } = await lookasideConfig();
    await gpgSign(`${reg.host}/team/app:1`, stage);
    let endless = false;
    let served = 0;
    const server: Server = createServer((req, res) => {
      served++;
      const rel = decodeURIComponent(new URL(req.url!, 'http://x').pathname).replace(/^\/sigs\//, '');
      if (endless) {
        res.end(Buffer.from('not a signature'));
        return;
      }
      readFile(join(lookaside, rel)).then(
        (b) => res.end(b),
        () => {
          res.statusCode = 404;
          res.end();
        },
      );
    });
    await new Promise<void>((r) => server.listen(0, LOOPBACK, r));
    try {
      const port = (server.address() as { port: number }).port;
      const { registriesDir } = await lookasideConfig(`http://${LOOPBACK}:${port}/sigs`);
      const d = await evaluatePolicy(signedBy({}), `docker://${reg.host}/team/app:1`, { registriesDir });
      expect(d.allowed, d.reason).toBe(true);
      expect(served).toBe(2); // signature-1, then the 404 of signature-2
      endless = true;
      const cut = await evaluatePolicy(signedBy({}), `docker://${reg.host}/team/app:1`, { registriesDir });
      expect(cut.allowed).toBe(false);
      expect(cut.reason).toMatch(/more than 128 signatures/);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('a dir: image signed by skopeo (signature-1 beside the manifest) is judged with exactReference', async () => {
    const out = join(dir, 'dir-image');
    const res = await runCommand(
      'skopeo',
      ['--insecure-policy', 'copy', '--sign-by', signer.fingerprint, '--sign-identity', 'registry.example/prod/app:7', image.ociRef, `dir:${out}`],
      { env: signer.env },
    );
    expect(res.code, res.stderr).toBe(0);
    const policy = (identity: string) =>
      parsePolicy(
        JSON.stringify({
          default: [
            { type: 'signedBy', keyType: 'GPGKeys', keyPath: signer.publicKeyFile, signedIdentity: { type: 'exactReference', dockerReference: identity } },
          ],
        }),
      );
    expect((await evaluatePolicy(policy('registry.example/prod/app:7'), `dir:${out}`)).allowed).toBe(true);
    expect((await evaluatePolicy(policy('registry.example/prod/app:8'), `dir:${out}`)).allowed).toBe(false);
    // matchRepoDigestOrExact needs the image's own name, which a dir: image has not.
    const byName = parsePolicy(JSON.stringify({ default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: signer.publicKeyFile }] }));
    expect((await evaluatePolicy(byName, `dir:${out}`)).reason).toMatch(/does not match the image under signedIdentity matchRepoDigestOrExact/);
  });

  it('copy with a signedBy policy (registries.d from the transport context) copies a signed image and refuses an unsigned one before writing', async () => {
    const { registriesDir } = await lookasideConfig();
    await gpgSign(`${reg.host}/team/app:1`, registriesDir);
    const policy = signedBy({});
    const dest = join(dir, 'copied');
    const r = await copyReference(parseImageName(`docker://${reg.host}/team/app:1`), parseImageName(`oci:${dest}:ok`), {
      policy,
      srcContext: { registriesDir },
    });
    expect(r.digest).toBe(image.descriptor.digest);
    await expect(
      copyReference(parseImageName(`docker://${reg.host}/team/unsigned:1`), parseImageName(`oci:${dest}:no`), { policy, srcContext: { registriesDir } }),
    ).rejects.toThrow(/policy denied: .*no signature exists/);
    const index = JSON.parse(await readFile(join(dest, 'index.json'), 'utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> };
    expect(index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name'])).toEqual(['ok']);
  });
});
