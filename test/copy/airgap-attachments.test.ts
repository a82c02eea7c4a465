/**
 * Air gap with signatures, referrers and an SBOM (issue 16, acceptance): registry → OCI layout →
 * OCI archive (a tar of the layout) → another registry. The image carries a cosign signature
 * (`.sig` tag) and an SPDX SBOM attached only as an OCI 1.1 referrer (no cosign `.att` tag). At
 * the far end `cosign verify` passes, the SBOM verifies as a referrer, and a `sigstoreSigned`
 * policy admits the image (and refuses it for another key). Real registries (distribution 2.8:
 * referrers go through the `sha256-<hex>` fallback tag), the real cosign.
 */
import { spawnSync } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { fallbackIndex } from '../../src/copy/layout-attachments.js';
import type { Digest } from '../../src/oci/digest.js';
import { OciLayout } from '../../src/oci/layout.js';
import { MediaType } from '../../src/oci/mediatype.js';
import { parseReference } from '../../src/oci/reference.js';
import { RegistryClient } from '../../src/registry/client.js';
import { getManifest } from '../../src/registry/manifests.js';
import { listTags } from '../../src/registry/tags.js';
import { generateKeyPair, loadPrivateKey } from '../../src/sign/keys.js';
import { signImage } from '../../src/sign/sign.js';
import { parseImageName } from '../../src/transports/index.js';
import { makeRandomImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { cleanupCli, stevedore } from '../cli/stevedore.js';
import { cosign } from '../sign/cosign.js';

const temps = new TempDirs();
let near: TestRegistry;
let far: TestRegistry;
let image: FixtureImage;
let keyDir: string;
const clients: RegistryClient[] = [];
const client = (host: string) => {
  const c = new RegistryClient({ registry: host });
  clients.push(c);
  return c;
};

beforeAll(async () => {
  [near, far] = await Promise.all([startRegistry({ name: 'airgap-near' }), startRegistry({ name: 'airgap-far' })]);
  image = await makeRandomImage({ layers: 1, layerSize: 20_000, seed: 'airgap', layoutDir: await temps.make('img'), ref: 'x' });
  keyDir = await temps.make('keys');
  for (const k of ['k', 'other']) {
    const pair = generateKeyPair('pw');
    await writeFile(join(keyDir, `${k}.key`), pair.privatePem);
    await writeFile(join(keyDir, `${k}.pub`), pair.publicPem);
  }
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all([near?.stop(), far?.stop()]);
  await temps.cleanup();
  await cleanupCli();
});

const policyFile = async (key: string): Promise<string> => {
  const file = join(await temps.make('policy'), 'policy.json');
  await writeFile(
    file,
    JSON.stringify({
      default: [{ type: 'reject' }],
      transports: {
        docker: {
          [`${far.host}/far/app`]: [
            {
              type: 'sigstoreSigned',
              keyPath: join(keyDir, `${key}.pub`),
              // Signed as the near side's name; admitted under the far side's.
              signedIdentity: { type: 'remapIdentity', prefix: `${far.host}/far/app`, signedPrefix: `${near.host}/air/app` },
            },
          ],
        },
      },
    }),
  );
  return file;
};

describe('air gap through an OCI archive', () => {
  it('carries the cosign signature and an SBOM attached only as a referrer; cosign verify and a sigstoreSigned policy pass at the far end', async () => {
    await copyReference(parseImageName(image.ociRef), parseImageName(`docker://${near.host}/air/app:1`));
    const signed = await signImage(parseReference(`${near.host}/air/app:1`), await loadPrivateKey(join(keyDir, 'k.key'), 'pw'));
    const digest = signed.digest as Digest;
    const hex = digest.slice('sha256:'.length);
    const sbom = join(await temps.make('sbom'), 'sbom.spdx.json');
    await writeFile(
      sbom,
      JSON.stringify({
        spdxVersion: 'SPDX-2.3',
        SPDXID: 'SPDXRef-DOCUMENT',
        name: 'air-app',
        dataLicense: 'CC0-1.0',
        packages: [{ name: 'left-pad', SPDXID: 'SPDXRef-left-pad', versionInfo: '1.3.0' }],
      }),
    );
    const attest = await stevedore(
      ['attest', '--key', join(keyDir, 'k.key'), '--predicate', sbom, '--type', 'spdx', '--no-cosign-tag', `docker://${near.host}/air/app:1`],
      { env: { COSIGN_PASSWORD: 'pw' } },
    );
    expect(attest.code, attest.stderr).toBe(0);
    expect((await listTags(client(near.host), 'air/app')).sort()).toEqual(['1', `sha256-${hex}`, `sha256-${hex}.sig`].sort());

    // Near side: export into a layout, then into an archive (a tar of the layout).
    const out = await temps.make('export');
    const exp = await stevedore(['sync', '--src', 'docker', '--dest', 'oci', `${near.host}/air/app`, out]);
    expect(exp.code, exp.stderr).toBe(0);
    expect((await (await OciLayout.open(join(out, 'app'))).refNames()).sort()).toEqual(['1', `sha256-${hex}`, `sha256-${hex}.sig`].sort());
    const carried = await temps.make('usb-stick');
    const archive = join(carried, 'app.tar');
    const tar = spawnSync('tar', ['-C', join(out, 'app'), '-cf', archive, '.'], { encoding: 'utf8' });
    expect(tar.status, tar.stderr).toBe(0);

    // Far side: import the archive itself.
    const imp = await stevedore(['sync', '--src', 'oci', '--dest', 'docker', archive, `${far.host}/far`]);
    expect(imp.code, imp.stderr + imp.stdout).toBe(0);
    expect((await listTags(client(far.host), 'far/app')).sort()).toEqual(['1', `sha256-${hex}`, `sha256-${hex}.sig`].sort());
    // The referrer arrived with its subject: the fallback index lists the in-toto SBOM whose subject is the image.
    const idx = JSON.parse((await getManifest(client(far.host), 'far/app', `sha256-${hex}`)).bytes.toString()) as {
      manifests: { digest: string; artifactType?: string }[];
    };
    expect(idx.manifests.map((m) => m.artifactType)).toEqual(['application/vnd.in-toto+json']);
    const referrer = JSON.parse((await getManifest(client(far.host), 'far/app', idx.manifests[0]!.digest)).bytes.toString()) as {
      subject?: { digest: string };
    };
    expect(referrer.subject?.digest).toBe(digest);

    const v = await cosign(['verify', '--key', join(keyDir, 'k.pub'), '--insecure-ignore-tlog', '--allow-insecure-registry', `${far.host}/far/app:1`]);
    expect(v.code, v.stderr).toBe(0);
    const att = await stevedore(['verify-attestation', '--key', join(keyDir, 'k.pub'), '--type', 'spdx', `docker://${far.host}/far/app:1`]);
    expect(att.code, att.stderr).toBe(0);
    expect(att.stdout).toContain('left-pad');

    const dest = await temps.make('admitted');
    const admitted = await stevedore(['copy', '-q', '--policy', await policyFile('k'), `docker://${far.host}/far/app:1`, `oci:${dest}:ok`]);
    expect(admitted.code, admitted.stderr).toBe(0);
    const refused = await stevedore(['copy', '-q', '--policy', await policyFile('other'), `docker://${far.host}/far/app:1`, `oci:${join(dest, 'no')}:no`]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('does not verify with the given public key');
  });
});

/** Pushes the image to `near/<repo>:1`, signs it (cosign `.sig`) and attaches an SBOM as a referrer only; returns the digest. */
async function signedAtNear(repo: string): Promise<{ digest: Digest; hex: string }> {
  await copyReference(parseImageName(image.ociRef), parseImageName(`docker://${near.host}/${repo}:1`));
  const signed = await signImage(parseReference(`${near.host}/${repo}:1`), await loadPrivateKey(join(keyDir, 'k.key'), 'pw'));
  const sbom = join(await temps.make('sbom'), 'sbom.spdx.json');
  await writeFile(
    sbom,
    JSON.stringify({
      spdxVersion: 'SPDX-2.3',
      SPDXID: 'SPDXRef-DOCUMENT',
      name: 'air-app',
      dataLicense: 'CC0-1.0',
      packages: [{ name: 'left-pad', SPDXID: 'SPDXRef-left-pad', versionInfo: '1.3.0' }],
    }),
  );
  const attest = await stevedore(
    ['attest', '--key', join(keyDir, 'k.key'), '--predicate', sbom, '--type', 'spdx', '--no-cosign-tag', `docker://${near.host}/${repo}:1`],
    { env: { COSIGN_PASSWORD: 'pw' } },
  );
  expect(attest.code, attest.stderr).toBe(0);
  const digest = signed.digest as Digest;
  return { digest, hex: digest.slice('sha256:'.length) };
}

/** At the far end: the tags, the referrer under its subject, cosign verify, the SBOM attestation. */
async function verifiedAtFar(repo: string, hex: string, digest: Digest): Promise<void> {
  expect((await listTags(client(far.host), repo)).sort()).toEqual(['1', `sha256-${hex}`, `sha256-${hex}.sig`].sort());
  const idx = JSON.parse((await getManifest(client(far.host), repo, `sha256-${hex}`)).bytes.toString()) as {
    manifests: { digest: string; artifactType?: string }[];
  };
  expect(idx.manifests.map((m) => m.artifactType)).toEqual(['application/vnd.in-toto+json']);
  const referrer = JSON.parse((await getManifest(client(far.host), repo, idx.manifests[0]!.digest)).bytes.toString()) as { subject?: { digest: string } };
  expect(referrer.subject?.digest).toBe(digest);
  const v = await cosign(['verify', '--key', join(keyDir, 'k.pub'), '--insecure-ignore-tlog', '--allow-insecure-registry', `${far.host}/${repo}:1`]);
  expect(v.code, v.stderr).toBe(0);
  const att = await stevedore(['verify-attestation', '--key', join(keyDir, 'k.pub'), '--type', 'spdx', `docker://${far.host}/${repo}:1`]);
  expect(att.code, att.stderr).toBe(0);
  expect(att.stdout).toContain('left-pad');
}

/** The ref names inside an oci-archive file. */
async function archiveRefNames(file: string): Promise<string[]> {
  const dir = await temps.make('look');
  const x = spawnSync('tar', ['-C', dir, '-xf', file], { encoding: 'utf8' });
  expect(x.status, x.stderr).toBe(0);
  return (await (await OciLayout.open(dir)).refNames()).sort();
}

describe('air gap through sync --dest oci-archive and copy oci-archive:', () => {
  it('sync --dest oci-archive writes DIR/<name>.tar holding the image, its .sig and its referrers; sync --src oci of that file lands them at the far end, where cosign verify passes', async () => {
    const { digest, hex } = await signedAtNear('air2/app');
    const out = await temps.make('archives');
    const exp = await stevedore(['sync', '--src', 'docker', '--dest', 'oci-archive', `${near.host}/air2/app`, out]);
    expect(exp.code, exp.stderr).toBe(0);
    const archive = join(out, 'app.tar');
    expect(exp.stderr).toContain(`Wrote ${archive}`);
    expect(exp.stdout).toContain(`oci-archive:${archive}:1`);
    expect(exp.stdout).not.toContain('stevedore-sync-archive');
    expect(await archiveRefNames(archive)).toEqual(['1', `sha256-${hex}`, `sha256-${hex}.sig`].sort());
    // No scratch layout is left behind.
    expect((await readdir(out)).sort()).toEqual(['app.tar']);

    const imp = await stevedore(['sync', '--src', 'oci', '--dest', 'docker', archive, `${far.host}/far2`]);
    expect(imp.code, imp.stderr + imp.stdout).toBe(0);
    await verifiedAtFar('far2/app', hex, digest);

    // A sync that fails writes no archive (and keeps the one there).
    const failed = await stevedore(['sync', '--src', 'docker', '--dest', 'oci-archive', `${near.host}/air2/missing`, out]);
    expect(failed.code).not.toBe(0);
    expect((await readdir(out)).sort()).toEqual(['app.tar']);
    const bad = await stevedore(['sync', '--src', 'docker', '--dest', 'oci-archive', '--prune', `${near.host}/air2/app`, out]);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain('--prune is not supported with --dest oci-archive');
  });

  it('copy to an oci-archive carries the .sig and the referrers into the file, and copy from it carries them to the far registry', async () => {
    const { digest, hex } = await signedAtNear('air3/app');
    const file = join(await temps.make('copy-archive'), 'app.tar');
    const exp = await stevedore(['copy', '-q', `docker://${near.host}/air3/app:1`, `oci-archive:${file}:1`]);
    expect(exp.code, exp.stderr).toBe(0);
    expect(await archiveRefNames(file)).toEqual(['1', `sha256-${hex}`, `sha256-${hex}.sig`].sort());
    // --remove-signatures leaves them out.
    const bare = join(await temps.make('copy-bare'), 'app.tar');
    const plain = await stevedore(['copy', '-q', '--remove-signatures', `docker://${near.host}/air3/app:1`, `oci-archive:${bare}:1`]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(await archiveRefNames(bare)).toEqual(['1']);

    const imp = await stevedore(['copy', '-q', `oci-archive:${file}:1`, `docker://${far.host}/far3/app:1`]);
    expect(imp.code, imp.stderr).toBe(0);
    await verifiedAtFar('far3/app', hex, digest);

    // A layout the user names (oci:) gets them too ...
    const layout = await temps.make('copy-layout');
    const toLayout = await stevedore(['copy', '-q', `docker://${near.host}/air3/app:1`, `oci:${layout}:1`]);
    expect(toLayout.code, toLayout.stderr).toBe(0);
    expect((await (await OciLayout.open(layout)).refNames()).sort()).toEqual(['1', `sha256-${hex}`, `sha256-${hex}.sig`].sort());
    // ... the image store's own layout does not: a pull stores the image alone.
    const root = await temps.make('store');
    const pull = await stevedore(['pull', '--root', root, '--tls-verify=false', `${near.host}/air3/app:1`], { timeoutMs: 60_000 });
    expect(pull.code, pull.stderr).toBe(0);
    const stored = await (await OciLayout.open(join(root, 'images'))).refNames();
    expect(stored).toHaveLength(1);
    expect(stored.some((n) => n.includes('sha256-'))).toBe(false);
  });
});

describe('referrers known only to the referrers API', () => {
  it('are exported as the fallback index the distribution spec defines: their descriptors with artifactType and annotations', () => {
    const d = (n: number) => `sha256:${String(n).repeat(64)}` as Digest;
    const idx = fallbackIndex([
      {
        mediaType: MediaType.OciManifest,
        digest: d(1),
        size: 10,
        artifactType: 'application/vnd.in-toto+json',
        annotations: { 'org.opencontainers.image.created': '2026-01-01T00:00:00Z' },
      },
      { mediaType: MediaType.OciManifest, digest: d(2), size: 20, artifactType: 'application/spdx+json' },
    ]);
    expect(idx.mediaType).toBe(MediaType.OciIndex);
    expect(JSON.parse(idx.bytes.toString())).toEqual({
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [
        {
          mediaType: MediaType.OciManifest,
          digest: d(1),
          size: 10,
          artifactType: 'application/vnd.in-toto+json',
          annotations: { 'org.opencontainers.image.created': '2026-01-01T00:00:00Z' },
        },
        { mediaType: MediaType.OciManifest, digest: d(2), size: 20, artifactType: 'application/spdx+json' },
      ],
    });
  });
});
