import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '../../hack/lib/harness/procs.js';
import { makeGpgHome, type GpgHome } from '../sign/gpg-home.js';
import { cleanupCli, stevedore } from './stevedore.js';

const MANIFEST =
  '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:' +
  '0'.repeat(64) +
  '","size":2},"layers":[]}';

describe("stevedore standalone-sign / standalone-verify (skopeo's arguments, interop with skopeo 1.9)", () => {
  let home: GpgHome;
  let stranger: GpgHome;
  let manifest: string;
  beforeAll(async () => {
    [home, stranger] = await Promise.all([makeGpgHome('standalone', { passphrase: 'pass phrase' }), makeGpgHome('standalone-other')]);
    manifest = join(home.dir, 'manifest.json');
    await writeFile(manifest, MANIFEST);
    await writeFile(join(home.dir, 'pass'), 'pass phrase\n');
  }, 180_000);
  afterAll(async () => {
    await Promise.all([home?.remove(), stranger?.remove()]);
    await cleanupCli();
  });

  it('stevedore signs with a key in the GnuPG home (passphrase file); skopeo standalone-verify accepts it', async () => {
    const sig = join(home.dir, 'ours.sig');
    const r = await stevedore(
      ['standalone-sign', manifest, 'localhost:5000/team/app:1', home.fingerprint, '--output', sig, '--passphrase-file', join(home.dir, 'pass')],
      { env: home.env },
    );
    expect(r.code, r.stderr).toBe(0);
    const v = await runCommand('skopeo', ['standalone-verify', manifest, 'localhost:5000/team/app:1', home.fingerprint, sig], { env: home.env });
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/^Signature verified, digest sha256:[0-9a-f]{64}/);
    // And skopeo refuses it for another reference, as we do.
    const other = await runCommand('skopeo', ['standalone-verify', manifest, 'localhost:5000/team/other:1', home.fingerprint, sig], { env: home.env });
    expect(other.code).not.toBe(0);
    const ours = await stevedore(['standalone-verify', manifest, 'localhost:5000/team/other:1', home.fingerprint, sig], { env: home.env });
    expect(ours.code).toBe(125);
    expect(ours.stderr).toMatch(/claims docker reference localhost:5000\/team\/app:1, not localhost:5000\/team\/other:1/);
  });

  it('without the passphrase the protected key is refused, and nothing is written', async () => {
    const sig = join(home.dir, 'never.sig');
    const r = await stevedore(['standalone-sign', manifest, 'localhost:5000/team/app:1', home.fingerprint, '--output', sig], { env: home.env });
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/KEY_INVALID/);
    const exists = await runCommand('test', ['-e', sig]);
    expect(exists.code).toBe(1);
  });

  it('skopeo signs; stevedore standalone-verify accepts it with the GnuPG home or a key file, and refuses the wrong signer, digest or key', async () => {
    const sig = join(stranger.dir, 'skopeo.sig');
    const s = await runCommand('skopeo', ['standalone-sign', manifest, 'docker.io/library/busybox:1.36', stranger.fingerprint, '--output', sig], {
      env: stranger.env,
    });
    expect(s.code, s.stderr).toBe(0);
    const ok = await stevedore(['standalone-verify', manifest, 'busybox:1.36', stranger.fingerprint, sig], { env: stranger.env });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(new RegExp(`^Signature verified using fingerprint ${stranger.fingerprint}, digest sha256:[0-9a-f]{64}\\n$`));
    const withFile = await stevedore([
      'standalone-verify',
      '--public-key-file',
      stranger.armoredPublicKeyFile,
      manifest,
      'docker.io/library/busybox:1.36',
      'any',
      sig,
    ]);
    expect(withFile.code, withFile.stderr).toBe(0);
    // Listed fingerprints that do not include the signer.
    const wrongFpr = await stevedore([
      'standalone-verify',
      '--public-key-file',
      stranger.publicKeyFile,
      manifest,
      'busybox:1.36',
      `${home.fingerprint},AAAA`,
      sig,
    ]);
    expect(wrongFpr.code).toBe(125);
    expect(wrongFpr.stderr).toMatch(/not one of the accepted fingerprints/);
    // Only the other key available.
    const wrongKey = await stevedore(['standalone-verify', '--public-key-file', home.publicKeyFile, manifest, 'busybox:1.36', stranger.fingerprint, sig]);
    expect(wrongKey.stderr).toMatch(/not among the trusted keys/);
    // Another manifest.
    const other = join(stranger.dir, 'other.json');
    await writeFile(other, MANIFEST.replace('"layers":[]', '"layers": []'));
    const wrongDigest = await stevedore(['standalone-verify', manifest.replace(manifest, other), 'busybox:1.36', stranger.fingerprint, sig], {
      env: stranger.env,
    });
    expect(wrongDigest.code).toBe(125);
    expect(wrongDigest.stderr).toMatch(/SIGNATURE_MISMATCH/);
  });
});
