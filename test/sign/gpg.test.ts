import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGpgSignature, verifyGpgSignature } from '../../src/sign/gpg.js';
import { readGpgPublicKeyFiles, readGpgPublicKeys, readGpgSecretKey, secretKeyFromGpgHome } from '../../src/sign/gpg-keys.js';
import { encodeAtomicPayload, parseAtomicPayload } from '../../src/sign/simple-signing.js';
import { runCommand } from '../../hack/lib/harness/procs.js';
import { makeGpgHome, runBinary, type GpgHome } from './gpg-home.js';

const DIGEST = `sha256:${'ab'.repeat(32)}` as const;

describe('GPG simple signing (openpgp.js against Debian gpg 2.2 and skopeo 1.9)', () => {
  let home: GpgHome;
  let other: GpgHome;
  let protectedHome: GpgHome;
  let edFpr: string;
  beforeAll(async () => {
    [home, other, protectedHome] = await Promise.all([makeGpgHome('signer'), makeGpgHome('stranger'), makeGpgHome('locked', { passphrase: 'correct horse' })]);
    await home.gpg(['--pinentry-mode', 'loopback', '--passphrase', '', '--quick-gen-key', 'ed <ed@stevedore.test>', 'ed25519', 'sign', 'never']);
    const list = await home.gpg(['--with-colons', '--list-keys', 'ed@stevedore.test']);
    edFpr = list.stdout
      .split('\n')
      .find((l) => l.startsWith('fpr:'))!
      .split(':')[9]!;
  }, 180_000);
  afterAll(async () => {
    await Promise.all([home?.remove(), other?.remove(), protectedHome?.remove()]);
  });

  it("encodes the payload byte for byte as skopeo standalone-sign writes it, and parses skopeo's back", async () => {
    const manifest = join(home.dir, 'manifest.json');
    await writeFile(manifest, '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}');
    const sigFile = join(home.dir, 'skopeo.sig');
    const res = await runCommand('skopeo', ['standalone-sign', manifest, 'localhost:5000/team/app:1', home.fingerprint, '--output', sigFile], {
      env: home.env,
    });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const payload = await runBinary(home, ['--decrypt', sigFile]);
    const parsed = parseAtomicPayload(payload);
    expect(parsed.dockerReference).toBe('localhost:5000/team/app:1');
    expect(parsed.creator).toMatch(/^atomic /);
    expect(encodeAtomicPayload(parsed).equals(payload)).toBe(true);
    // ...and openpgp.js verifies skopeo's signature with the exported key, binary or armored.
    for (const file of [home.publicKeyFile, home.armoredPublicKeyFile]) {
      const v = await verifyGpgSignature(await readFile(sigFile), await readGpgPublicKeyFiles([file]));
      expect(v.fingerprint).toBe(home.fingerprint);
      expect(v.payload.manifestDigest).toBe(parsed.manifestDigest);
    }
  });

  it('signs with a key exported from a GnuPG home, and gpg --verify accepts the signature', async () => {
    for (const fpr of [home.fingerprint, edFpr]) {
      const key = await secretKeyFromGpgHome(fpr, { gnupgHome: home.dir });
      const sig = await createGpgSignature(key, 'localhost:5000/team/app:1', DIGEST);
      const file = join(home.dir, `ours-${fpr}.sig`);
      await writeFile(file, sig);
      const res = await runCommand('gpg', ['--batch', '--status-fd', '1', '--verify', file], { env: home.env });
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toContain(`[GNUPG:] VALIDSIG ${fpr}`);
      const payload = parseAtomicPayload(await runBinary(home, ['--decrypt', file]));
      expect(payload).toMatchObject({ dockerReference: 'localhost:5000/team/app:1', manifestDigest: DIGEST, creator: 'stevedore 0.1.0' });
    }
  });

  it("verifies against a keyring of several keys and names the signer; a stranger's key is refused", async () => {
    const ring = join(home.dir, 'ring.gpg');
    await writeFile(ring, Buffer.concat([await readFile(other.publicKeyFile), await readFile(home.publicKeyFile)]));
    const keys = await readGpgPublicKeyFiles([ring]);
    expect(keys).toHaveLength(2);
    const sig = await createGpgSignature(await secretKeyFromGpgHome(home.fingerprint, { gnupgHome: home.dir }), 'localhost:5000/a:1', DIGEST);
    expect((await verifyGpgSignature(sig, keys)).fingerprint).toBe(home.fingerprint);
    await expect(verifyGpgSignature(sig, await readGpgPublicKeyFiles([other.publicKeyFile]))).rejects.toThrow(/not among the trusted keys/);
    await expect(verifyGpgSignature(sig, keys, [other.fingerprint])).rejects.toThrow(/not one of the accepted fingerprints/);
    expect((await verifyGpgSignature(sig, keys, [home.fingerprint.toLowerCase()])).fingerprint).toBe(home.fingerprint);
  });

  it('refuses a signature whose bytes were altered, and garbage, naming what failed', async () => {
    const keys = await readGpgPublicKeyFiles([home.publicKeyFile]);
    const sig = await createGpgSignature(await secretKeyFromGpgHome(home.fingerprint, { gnupgHome: home.dir }), 'localhost:5000/a:1', DIGEST);
    // Flip a byte inside the literal data (the payload's digest text): the signature no longer holds.
    const text = sig.toString('latin1');
    const at = text.indexOf('abab');
    expect(at).toBeGreaterThan(0);
    const tampered = Buffer.from(sig);
    tampered[at] = 'c'.charCodeAt(0);
    await expect(verifyGpgSignature(tampered, keys)).rejects.toThrow(/does not verify/);
    await expect(verifyGpgSignature(Buffer.from('not a signature'), keys)).rejects.toThrow(/not an OpenPGP signed message/);
    await expect(verifyGpgSignature(Buffer.alloc(5 * 1024 * 1024), keys)).rejects.toThrow(/limit/);
  });

  it('a gpg-made signature over a payload that is not an atomic signature is refused after verifying', async () => {
    const keys = await readGpgPublicKeyFiles([home.publicKeyFile]);
    const bad = [
      '{"critical":{"identity":{"docker-reference":"a/b:1"},"image":{"docker-manifest-digest":"' +
        DIGEST +
        '"},"type":"cosign container image signature"},"optional":{}}',
      '{"critical":{"identity":{"docker-reference":"a/b:1"},"image":{"docker-manifest-digest":"' +
        DIGEST +
        '"},"type":"atomic container signature","extra":1},"optional":{}}',
      '{"critical":{"identity":{"docker-reference":"a/b:1"},"image":{"docker-manifest-digest":"' + DIGEST + '"},"type":"atomic container signature"}}',
      '{"critical":{"identity":{"docker-reference":"a/b:1"},"image":{"docker-manifest-digest":"' +
        DIGEST +
        '","docker-manifest-digest":"sha256:' +
        'cd'.repeat(32) +
        '"},"type":"atomic container signature"},"optional":{}}',
      '{"critical":{"identity":{"docker-reference":"a/b:1"},"image":{"docker-manifest-digest":"' +
        DIGEST +
        '"},"type":"atomic container signature"},"optional":{"timestamp":"yesterday"}}',
    ];
    const reasons = [];
    for (const payload of bad) {
      const file = join(home.dir, 'payload.json');
      await writeFile(file, payload);
      const sig = await runBinary(home, ['--local-user', home.fingerprint, '--sign', file]);
      reasons.push(
        await verifyGpgSignature(sig, keys).then(
          () => 'accepted',
          (e: Error) => e.message,
        ),
      );
    }
    expect(reasons).toEqual([
      expect.stringMatching(/unrecognized signature type/),
      expect.stringMatching(/unexpected field critical.extra/),
      expect.stringMatching(/field \(top level\).optional is missing/),
      expect.stringMatching(/duplicated field "docker-manifest-digest"/),
      expect.stringMatching(/optional.timestamp is not a whole number/),
    ]);
  });

  it('a passphrase-protected key: unlocked with the passphrase, refused without or with a wrong one (never quoted)', async () => {
    await expect(secretKeyFromGpgHome(protectedHome.fingerprint, { gnupgHome: protectedHome.dir, passphrase: 'wrong' })).rejects.toThrow(
      /gpg --export-secret-keys|wrong passphrase/,
    );
    const key = await secretKeyFromGpgHome(protectedHome.fingerprint, { gnupgHome: protectedHome.dir, passphrase: 'correct horse' });
    const sig = await createGpgSignature(key, 'localhost:5000/a:1', DIGEST);
    expect((await verifyGpgSignature(sig, await readGpgPublicKeys(await readFile(protectedHome.armoredPublicKeyFile), 'pub.asc'))).fingerprint).toBe(
      protectedHome.fingerprint,
    );
    // The exported (still protected) key file: readGpgSecretKey needs the passphrase.
    const exported = await runBinary(protectedHome, [
      '--pinentry-mode',
      'loopback',
      '--passphrase',
      'correct horse',
      '--export-secret-keys',
      '--armor',
      protectedHome.fingerprint,
    ]);
    const err = await readGpgSecretKey(exported, { source: 'key.asc' }).catch((e: Error) => e);
    expect(String(err)).toMatch(/protected by a passphrase/);
    const wrong = await readGpgSecretKey(exported, { source: 'key.asc', passphrase: 'nope nope' }).catch((e: Error) => e);
    expect(String(wrong)).toMatch(/wrong passphrase/);
    expect(String(wrong)).not.toContain('nope nope');
  });

  it('a key file that is not a key is named in the error', async () => {
    const f = join(home.dir, 'junk.asc');
    await writeFile(f, '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n');
    await expect(readGpgPublicKeyFiles([f])).rejects.toThrow(f);
    await expect(readGpgPublicKeyFiles([join(home.dir, 'missing')])).rejects.toThrow(/cannot read GPG key file/);
  });
});
