/**
 * Signatures between stevedore and the real cosign, both directions, both stored forms (the
 * `sha256-<hex>.sig` simple-signing image and the sigstore bundle referrer), on a real registry
 * (distribution 2.8, which has no referrers API: bundles go through the fallback tag). And the bad
 * input a verifier must refuse with a reason: tampered payloads, wrong keys, payloads naming
 * another digest or repository, truncated and garbage signatures.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import type { Digest } from '../../src/oci/digest.js';
import { parseManifest } from '../../src/oci/manifest.js';
import { parseReference } from '../../src/oci/reference.js';
import { RegistryClient } from '../../src/registry/client.js';
import { getManifest } from '../../src/registry/manifests.js';
import { signData } from '../../src/sign/crypto.js';
import { generateKeyPair, loadPrivateKey, loadPublicKey } from '../../src/sign/keys.js';
import { encodeSimpleSigning } from '../../src/sign/payload.js';
import { attachmentTag } from '../../src/registry/referrers.js';
import { appendSignature, SIGNATURE_ANNOTATION } from '../../src/sign/signature-image.js';
import { verifyImage } from '../../src/sign/verify.js';
import { parseImageName } from '../../src/transports/index.js';
import { makeRandomImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { validateOci } from '../../hack/lib/harness/schema.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { cleanupCli, stevedore } from '../cli/stevedore.js';
import { cosign, emptyTrustedRoot } from './cosign.js';

const temps = new TempDirs();
let reg: TestRegistry;
let dir: string;
let image: FixtureImage;
let other: FixtureImage;
let client: RegistryClient;
let ourKey: KeyObject;
const keys = { ours: '', oursPub: '', plain: '', plainPub: '', cosign: '', cosignPub: '' };

async function push(img: FixtureImage, repoTag: string): Promise<void> {
  await copyReference(parseImageName(img.ociRef), parseImageName(`docker://${reg.host}/${repoTag}`));
}

beforeAll(async () => {
  reg = await startRegistry({ name: 'sign-interop' });
  dir = await temps.make('sign-interop');
  image = await makeRandomImage({ layers: 2, layerSize: 16 * 1024, layoutDir: await temps.make('img') });
  other = await makeRandomImage({ layers: 1, layerSize: 8 * 1024, layoutDir: await temps.make('img2') });
  client = new RegistryClient({ registry: reg.host });
  const ours = generateKeyPair('ours-pw');
  keys.ours = join(dir, 'ours.key');
  keys.oursPub = join(dir, 'ours.pub');
  await writeFile(keys.ours, ours.privatePem);
  await writeFile(keys.oursPub, ours.publicPem);
  ourKey = await loadPrivateKey(keys.ours, 'ours-pw');
  const plain = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  keys.plain = join(dir, 'plain.key');
  keys.plainPub = join(dir, 'plain.pub');
  await writeFile(keys.plain, plain.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  await writeFile(keys.plainPub, plain.publicKey.export({ type: 'spki', format: 'pem' }));
  const gen = await cosign(['generate-key-pair', '--output-key-prefix', join(dir, 'cosign')], { password: 'cosign-pw' });
  if (gen.code !== 0) throw new Error(`cosign generate-key-pair failed: ${gen.stderr}`);
  keys.cosign = join(dir, 'cosign.key');
  keys.cosignPub = join(dir, 'cosign.pub');
  await push(image, 'app:1');
  await push(other, 'app:2');
});

afterAll(async () => {
  await client?.close();
  await reg?.stop();
  await cleanupCli();
  await temps.cleanup();
});

const ref = (repoTag: string) => `${reg.host}/${repoTag}`;

async function sigManifest(repo: string, digest: Digest) {
  const raw = await getManifest(client, repo, attachmentTag(digest, 'sig'));
  const parsed = parseManifest(raw.bytes, raw.mediaType);
  if (parsed.kind !== 'image') throw new Error('signature image is an index');
  return { raw, manifest: parsed.manifest };
}

describe('simple signing (.sig tag) between stevedore and cosign', () => {
  it('cosign verifies what stevedore signed with an encrypted key, and the signature image passes the OCI schema', async () => {
    const signed = await stevedore(['sign', '--key', keys.ours, `docker://${ref('app:1')}`], { env: { COSIGN_PASSWORD: 'ours-pw' } });
    expect(signed.code, signed.stderr).toBe(0);
    expect(signed.stdout).toContain(`${image.manifest.digest} (simple)`);
    const v = await cosign(['verify', '--key', keys.oursPub, '--insecure-ignore-tlog', '--allow-insecure-registry', ref('app:1')]);
    expect(v.code, v.stderr).toBe(0);
    const payloads = JSON.parse(v.stdout) as Array<{
      critical: { identity: { 'docker-reference': string }; image: { 'docker-manifest-digest': string }; type: string };
    }>;
    expect(payloads[0]!.critical.image['docker-manifest-digest']).toBe(image.manifest.digest);
    expect(payloads[0]!.critical.identity['docker-reference']).toBe(ref('app:1'));
    expect(payloads[0]!.critical.type).toBe('cosign container image signature');
    const { manifest, raw } = await sigManifest('app', image.manifest.digest);
    validateOci('manifest', JSON.parse(raw.bytes.toString()));
    expect(manifest.layers).toHaveLength(1);
    expect(manifest.layers[0]!.mediaType).toBe('application/vnd.dev.cosign.simplesigning.v1+json');
    expect(manifest.layers[0]!.annotations?.[SIGNATURE_ANNOTATION]).toMatch(/^[A-Za-z0-9+/]+=*$/);
  });

  it('cosign verifies a signature made with a plain PKCS#8 key (no password)', async () => {
    const signed = await stevedore(['sign', '--key', keys.plain, ref(`app@${other.manifest.digest}`)]);
    expect(signed.code, signed.stderr).toBe(0);
    const v = await cosign(['verify', '--key', keys.plainPub, '--insecure-ignore-tlog', '--allow-insecure-registry', ref('app:2')]);
    expect(v.code, v.stderr).toBe(0);
    // Signed by digest: the identity is the repository alone, as cosign writes it.
    expect(JSON.parse(v.stdout)[0].critical.identity['docker-reference']).toBe(ref('app'));
  });

  it('stevedore verifies what cosign signed, and both signatures share one .sig image (appended, not replaced)', async () => {
    const s = await cosign(['sign', '--key', keys.cosign, '--tlog-upload=false', '--yes', '--allow-insecure-registry', ref(`app@${image.manifest.digest}`)], {
      password: 'cosign-pw',
    });
    expect(s.code, s.stderr).toBe(0);
    const v = await stevedore(['verify', '--key', keys.cosignPub, '-o', 'json', ref('app:1')]);
    expect(v.code, v.stderr).toBe(0);
    const report = JSON.parse(v.stdout) as { digest: string; verified: Array<{ identity: string }> };
    expect(report.digest).toBe(image.manifest.digest);
    expect(report.verified.map((x) => x.identity)).toEqual([ref('app')]);
    expect((await sigManifest('app', image.manifest.digest)).manifest.layers).toHaveLength(2);
    // Our signature is still there and still verifies, under both tools.
    expect((await stevedore(['verify', '--key', keys.oursPub, ref('app:1')])).code).toBe(0);
    const c = await cosign(['verify', '--key', keys.oursPub, '--insecure-ignore-tlog', '--allow-insecure-registry', ref('app:1')]);
    expect(c.code, c.stderr).toBe(0);
  });
});

describe('sigstore bundles as OCI referrers between stevedore and cosign', () => {
  it("cosign --new-bundle-format verifies stevedore's bundle, and refuses it under another key", async () => {
    await push(image, 'bundled:1');
    const signed = await stevedore(['sign', '--format', 'bundle', '--key', keys.ours, ref('bundled:1')], { env: { COSIGN_PASSWORD: 'ours-pw' } });
    expect(signed.code, signed.stderr).toBe(0);
    const root = emptyTrustedRoot(dir);
    const v = await cosign([
      'verify',
      '--new-bundle-format',
      '--trusted-root',
      root,
      '--key',
      keys.oursPub,
      '--insecure-ignore-tlog',
      '--allow-insecure-registry',
      ref('bundled:1'),
    ]);
    expect(v.code, v.stderr).toBe(0);
    const wrong = await cosign([
      'verify',
      '--new-bundle-format',
      '--trusted-root',
      root,
      '--key',
      keys.plainPub,
      '--insecure-ignore-tlog',
      '--allow-insecure-registry',
      ref('bundled:1'),
    ]);
    expect(wrong.code).not.toBe(0);
    // No referrers API on distribution 2.8: the bundle is listed in the sha256-<hex> fallback index.
    const idx = await getManifest(client, 'bundled', attachmentTag(image.manifest.digest, 'sig').replace(/\.sig$/, ''));
    const parsed = parseManifest(idx.bytes, idx.mediaType);
    if (parsed.kind !== 'index') throw new Error('fallback tag is not an index');
    validateOci('index', JSON.parse(idx.bytes.toString()));
    const entry = parsed.index.manifests.find((m) => m.artifactType === 'application/vnd.dev.sigstore.bundle.v0.3+json');
    expect(entry?.annotations?.['dev.sigstore.bundle.predicateType']).toBe('https://sigstore.dev/cosign/sign/v1');
    // The referrer manifest itself: an OCI 1.1 artifact manifest with the image as its subject.
    const referrer = await getManifest(client, 'bundled', entry!.digest);
    const doc = JSON.parse(referrer.bytes.toString()) as { artifactType: string; subject: { digest: string }; config: { mediaType: string } };
    validateOci('manifest', doc);
    expect(doc.artifactType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    expect(doc.subject.digest).toBe(image.manifest.digest);
    expect(doc.config.mediaType).toBe('application/vnd.oci.empty.v1+json');
  });

  it("stevedore verifies a bundle cosign stored with --new-bundle-format, and only with cosign's key", async () => {
    await push(image, 'cbundled:1');
    const s = await cosign(
      [
        'sign',
        '--new-bundle-format',
        '--key',
        keys.cosign,
        '--tlog-upload=false',
        '--yes',
        '--allow-insecure-registry',
        ref(`cbundled@${image.manifest.digest}`),
      ],
      { password: 'cosign-pw' },
    );
    expect(s.code, s.stderr).toBe(0);
    const v = await stevedore(['verify', '--format', 'bundle', '--key', keys.cosignPub, '-o', 'json', ref('cbundled:1')]);
    expect(v.code, v.stderr).toBe(0);
    expect((JSON.parse(v.stdout) as { verified: Array<{ format: string }> }).verified[0]!.format).toBe('bundle');
    const wrong = await stevedore(['verify', '--format', 'bundle', '--key', keys.oursPub, ref('cbundled:1')]);
    expect(wrong.code).toBe(125);
    expect(wrong.stderr).toContain('bundle signature does not verify with the given public key');
  });
});

describe('signatures a verifier must refuse', () => {
  /** Stores a hand-made signature for `image` in its own repository, as an attacker or a broken tool might. */
  async function forge(repo: string, payload: Buffer, signature: string): Promise<void> {
    await push(image, `${repo}:1`);
    await appendSignature(client, repo, image.manifest.digest, payload, { [SIGNATURE_ANNOTATION]: signature });
  }
  const imageRef = (repo: string) => parseReference(ref(`${repo}:1`));

  it('a signature by another key: the error names the wrong key, and lists every refused signature', async () => {
    const r = await stevedore(['verify', '--key', keys.plainPub, ref('app:1')]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('no valid signature');
    expect(r.stderr.match(/does not verify with the given public key/g)).toHaveLength(2);
    expect(r.stderr).toContain('[SIGNATURE_INVALID]');
  });

  it('an image with no signatures at all', async () => {
    await push(image, 'unsigned:1');
    const r = await stevedore(['verify', '--key', keys.oursPub, ref('unsigned:1')]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('has no signatures [SIGNATURE_MISSING]');
  });

  it('a payload altered after signing (cosign refuses it too)', async () => {
    const good = encodeSimpleSigning(ref('tampered'), image.manifest.digest);
    const sig = signData(ourKey, good).toString('base64');
    const altered = Buffer.from(good.toString().replace('"optional":null', '"optional":{"owner":"mallory"}'));
    await forge('tampered', altered, sig);
    await expect(verifyImage(imageRef('tampered'), [await loadPublicKey(keys.oursPub)])).rejects.toThrow(/does not verify with the given public key/);
    const c = await cosign(['verify', '--key', keys.oursPub, '--insecure-ignore-tlog', '--allow-insecure-registry', ref('tampered:1')]);
    expect(c.code).not.toBe(0);
  });

  it('a valid signature over a payload for another digest (cosign refuses it too)', async () => {
    const forOther = encodeSimpleSigning(ref('otherdigest'), other.manifest.digest);
    await forge('otherdigest', forOther, signData(ourKey, forOther).toString('base64'));
    await expect(verifyImage(imageRef('otherdigest'), [await loadPublicKey(keys.oursPub)])).rejects.toThrow(
      `the signed payload is for digest ${other.manifest.digest}, not ${image.manifest.digest}`,
    );
    const c = await cosign(['verify', '--key', keys.oursPub, '--insecure-ignore-tlog', '--allow-insecure-registry', ref('otherdigest:1')]);
    expect(c.code).not.toBe(0);
  });

  it('a valid signature naming another repository is refused unless that repository is the one expected', async () => {
    const elsewhere = encodeSimpleSigning(ref('elsewhere'), image.manifest.digest);
    await forge('otherrepo', elsewhere, signData(ourKey, elsewhere).toString('base64'));
    const r = await stevedore(['verify', '--key', keys.oursPub, ref('otherrepo:1')]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain(`names repository "${ref('elsewhere')}", not ${ref('otherrepo')}`);
    const mirror = await stevedore(['verify', '--key', keys.oursPub, '--signed-repository', ref('elsewhere'), ref('otherrepo:1')]);
    expect(mirror.code, mirror.stderr).toBe(0);
  });

  it('truncated and garbage signatures', async () => {
    const payload = encodeSimpleSigning(ref('truncated'), image.manifest.digest);
    const full = signData(ourKey, payload);
    await forge('truncated', payload, full.subarray(0, 20).toString('base64'));
    await expect(verifyImage(imageRef('truncated'), [await loadPublicKey(keys.oursPub)])).rejects.toThrow(/does not verify/);
    await forge('garbage', encodeSimpleSigning(ref('garbage'), image.manifest.digest), '!!not base64!!');
    await expect(verifyImage(imageRef('garbage'), [await loadPublicKey(keys.oursPub)])).rejects.toThrow(/not valid base64/);
    await forge('notjson', Buffer.from('{"critical":'), signData(ourKey, Buffer.from('{"critical":')).toString('base64'));
    await expect(verifyImage(imageRef('notjson'), [await loadPublicKey(keys.oursPub)])).rejects.toThrow(/payload is not JSON/);
  });

  it('sign refuses a local image and an image that does not exist, naming it', async () => {
    const local = await stevedore(['sign', '--key', keys.plain, image.ociRef]);
    expect(local.code).toBe(125);
    expect(local.stderr).toContain('is not a registry image');
    const missing = await stevedore(['sign', '--key', keys.plain, ref('nope:1')]);
    expect(missing.code).toBe(125);
    expect(missing.stderr).toContain(`${ref('nope:1')}: no such image`);
  });
});
