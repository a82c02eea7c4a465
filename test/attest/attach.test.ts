import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachProvenance, attachSbom, attachStatement } from '../../src/attest/attach.js';
import { attachBuildAttestations } from '../../src/attest/build.js';
import { makeStatement } from '../../src/attest/statement.js';
import { provenanceStatement } from '../../src/attest/provenance.js';
import { verifyAttestations } from '../../src/attest/verify.js';
import { copyReference } from '../../src/copy/copy.js';
import { digestBytes, type Digest } from '../../src/oci/digest.js';
import { encodeManifest, parseManifest, type ImageIndex } from '../../src/oci/manifest.js';
import { RegistryClient } from '../../src/registry/client.js';
import { getManifest, headManifest, putManifest } from '../../src/registry/manifests.js';
import { referrersTag } from '../../src/registry/referrers.js';
import { parseImageName } from '../../src/transports/index.js';
import { validateOci } from '../../hack/lib/harness/schema.js';
import { makeIndex } from '../../hack/lib/harness/images.js';
import { hostPlatform } from '../../src/oci/platform.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { cosign } from '../sign/cosign.js';
import { dpkgStanzas } from '../sbom/content.js';
import { buildLayeredImage, type BuiltImage } from '../sbom/layered-image.js';

const temps = new TempDirs();
let reg: TestRegistry;
let client: RegistryClient;
let dir: string;
let image: BuiltImage;
let other: BuiltImage;
const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const wrong = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const privPem = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
let pubFile: string;
let wrongPubFile: string;

const ref = (tag: string): string => `docker://${reg.host}/attest/app:${tag}`;

beforeAll(async () => {
  reg = await startRegistry({ name: 'attest' });
  client = new RegistryClient({ registry: reg.host });
  dir = await temps.make('attest');
  pubFile = join(dir, 'key.pub');
  wrongPubFile = join(dir, 'wrong.pub');
  await writeFile(pubFile, keys.publicKey.export({ type: 'spki', format: 'pem' }));
  await writeFile(wrongPubFile, wrong.publicKey.export({ type: 'spki', format: 'pem' }));
  const layout = await temps.make('attest-layout');
  image = await buildLayeredImage(layout, 'deb', [
    [
      { path: 'etc/os-release', from: '/etc/os-release' },
      { path: 'var/lib/dpkg/status', content: await dpkgStanzas(['bash', 'coreutils', 'zlib1g']) },
    ],
  ]);
  other = await buildLayeredImage(layout, 'other', [[{ path: 'etc/os-release', from: '/etc/os-release' }]]);
  await copyReference(parseImageName(image.ociRef), parseImageName(ref('1.0')));
  await copyReference(parseImageName(other.ociRef), parseImageName(ref('other')));
}, 120_000);

afterAll(async () => {
  await client?.close();
  await reg?.stop();
  await temps.cleanup();
});

describe('SBOM attestations attached to an image in a real registry', () => {
  let spdx: Awaited<ReturnType<typeof attachSbom>>;

  beforeAll(async () => {
    spdx = await attachSbom(ref('1.0'), { key: privPem, format: 'spdx-json' });
  });

  it('stores a referrer artifact whose subject is the image, indexed under the sha256-<hex> fallback tag (distribution 2.8 has no referrers API)', async () => {
    expect(spdx.subject.digest).toBe(image.manifest.digest);
    expect(spdx.referrer?.via).toBe('tag');
    expect(spdx.sbom.packages).toBe(3);
    const fallback = await getManifest(client, 'attest/app', referrersTag(image.manifest.digest));
    const index = parseManifest(fallback.bytes, fallback.mediaType);
    expect(index.kind).toBe('index');
    validateOci('index', JSON.parse(fallback.bytes.toString()));
    const entry = (index as { index: ImageIndex }).index.manifests.find((m) => m.digest === spdx.referrer!.digest)!;
    expect(entry.artifactType).toBe('application/vnd.in-toto+json');
    expect(entry.annotations?.['in-toto.io/predicate-type']).toBe('https://spdx.dev/Document');
    const raw = await getManifest(client, 'attest/app', spdx.referrer!.digest);
    const doc = JSON.parse(raw.bytes.toString());
    validateOci('manifest', doc);
    expect(doc.subject.digest).toBe(image.manifest.digest);
    expect(doc.config.mediaType).toBe('application/vnd.oci.empty.v1+json');
    expect(doc.layers[0].mediaType).toBe('application/vnd.dsse.envelope.v1+json');
  });

  it('cosign verify-attestation accepts the SPDX attestation with our public key, and refuses it with another key', async () => {
    const ok = await cosign(['verify-attestation', '--key', pubFile, '--type', 'spdxjson', '--insecure-ignore-tlog=true', `${reg.host}/attest/app:1.0`]);
    expect(ok.code, ok.stderr).toBe(0);
    const statement = JSON.parse(Buffer.from(JSON.parse(ok.stdout.trim().split('\n')[0]!).payload, 'base64').toString());
    expect(statement.predicateType).toBe('https://spdx.dev/Document');
    expect(statement.predicate.spdxVersion).toBe('SPDX-2.3');
    const bad = await cosign(['verify-attestation', '--key', wrongPubFile, '--type', 'spdxjson', '--insecure-ignore-tlog=true', `${reg.host}/attest/app:1.0`]);
    expect(bad.code).not.toBe(0);
  });

  it('adds a CycloneDX attestation next to the SPDX one; cosign and our verifier find both', async () => {
    const cdx = await attachSbom(ref('1.0'), { key: privPem, format: 'cyclonedx-json' });
    expect(cdx.cosign?.tag).toBe(spdx.cosign?.tag);
    const ok = await cosign(['verify-attestation', '--key', pubFile, '--type', 'cyclonedx', '--insecure-ignore-tlog=true', `${reg.host}/attest/app:1.0`]);
    expect(ok.code, ok.stderr).toBe(0);
    const res = await verifyAttestations(ref('1.0'), { key: pubFile });
    expect(res.rejected).toEqual([]);
    const kinds = res.verified.map((v) => `${v.source} ${v.statement.predicateType}`).sort();
    expect(kinds).toEqual([
      'cosign-tag https://cyclonedx.org/bom',
      'cosign-tag https://spdx.dev/Document',
      'referrer https://cyclonedx.org/bom',
      'referrer https://spdx.dev/Document',
    ]);
  });

  it('our verifier rejects every attestation, with the reason, under a key that did not sign them', async () => {
    const res = await verifyAttestations(ref('1.0'), { key: wrongPubFile });
    expect(res.verified).toEqual([]);
    expect(res.rejected.length).toBe(4);
    for (const r of res.rejected) expect(r.reason).toMatch(/does not verify with the given public key/);
  });
});

describe('SLSA provenance and interoperability with cosign attest', () => {
  it('attaches a SLSA v1 provenance statement that cosign verifies as slsaprovenance1', async () => {
    const st = provenanceStatement({
      subject: { name: `${reg.host}/attest/app`, digest: image.manifest.digest },
      source: { uri: 'git+https://example.com/org/app@refs/heads/main', commit: 'c'.repeat(40) },
      containerfile: { path: 'Containerfile', digest: digestBytes('FROM scratch\n') },
      buildArgs: { A: '1' },
      builder: { version: '0.1.0' },
    });
    const res = await attachProvenance(`docker://${reg.host}/attest/app`, st, { key: privPem });
    expect(res.subject.digest).toBe(image.manifest.digest);
    const ok = await cosign([
      'verify-attestation',
      '--key',
      pubFile,
      '--type',
      'slsaprovenance1',
      '--insecure-ignore-tlog=true',
      `${reg.host}/attest/app@${image.manifest.digest}`,
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    const got = JSON.parse(Buffer.from(JSON.parse(ok.stdout.trim().split('\n')[0]!).payload, 'base64').toString());
    expect(got.predicate.runDetails.builder.version).toEqual({ stevedore: '0.1.0' });
  });

  it('verifies an attestation that cosign attest made with a cosign key pair', async () => {
    const gen = await cosign(['generate-key-pair', '--output-key-prefix', join(dir, 'cosign')], { password: 'pw' });
    expect(gen.code, gen.stderr).toBe(0);
    const predicate = join(dir, 'predicate.json');
    await writeFile(predicate, JSON.stringify({ hello: 'world' }));
    const att = await cosign(
      [
        'attest',
        '--yes',
        '--tlog-upload=false',
        '--key',
        join(dir, 'cosign.key'),
        '--type',
        'custom',
        '--predicate',
        predicate,
        `${reg.host}/attest/app:other`,
      ],
      { password: 'pw' },
    );
    expect(att.code, att.stderr).toBe(0);
    const res = await verifyAttestations(ref('other'), { key: join(dir, 'cosign.pub') });
    expect(res.rejected).toEqual([]);
    expect(res.verified).toHaveLength(1);
    expect(res.verified[0]!.source).toBe('cosign-tag');
    expect(res.verified[0]!.statement.predicateType).toBe('https://cosign.sigstore.dev/attestation/v1');
    expect(res.verified[0]!.statement.predicate).toMatchObject({ Data: JSON.stringify({ hello: 'world' }) });
  });
});

describe('attachBuildAttestations (for stevedore build --sbom and the ImageBuild controller)', () => {
  it('attaches an SBOM and SLSA provenance for a pushed digest, and returns short summaries', async () => {
    await copyReference(parseImageName(image.ociRef), parseImageName(ref('built')));
    const summaries = await attachBuildAttestations(ref('built'), image.manifest.digest, {
      key: privPem,
      sbom: 'cyclonedx-json',
      provenance: {
        containerfile: { path: 'Containerfile', digest: digestBytes('FROM scratch\n') },
        buildArgs: {},
        builder: { version: '0.1.0' },
        source: { uri: 'dir:/ctx' },
      },
    });
    expect(summaries.map((s) => [s.kind, s.predicateType, s.subject])).toEqual([
      ['sbom', 'https://cyclonedx.org/bom', image.manifest.digest],
      ['provenance', 'https://slsa.dev/provenance/v1', image.manifest.digest],
    ]);
    expect(JSON.stringify(summaries).length).toBeLessThan(1024);
    const v = await verifyAttestations(`docker://${reg.host}/attest/app@${image.manifest.digest}`, {
      key: pubFile,
      predicateType: 'https://slsa.dev/provenance/v1',
    });
    const prov = v.verified.find((x) => x.manifest === summaries[1]!.referrer)!;
    expect(prov.statement.subject).toEqual([{ name: `${reg.host}/attest/app`, digest: { sha256: image.manifest.digest.slice(7) } }]);
  });
});

describe('multi-platform images', () => {
  it("attests the SBOM to the host platform's image of an index, which the SBOM describes", async () => {
    const idx = await makeIndex(await temps.make('attest-index'), 'multi', ['linux/arm64', hostPlatform()], { layers: 1, layerSize: 1024 });
    await copyReference(parseImageName(idx.ociRef), parseImageName(ref('multi')), { all: true });
    const host = idx.images.find((i) => i.platform.architecture === hostPlatform().architecture)!;
    const res = await attachSbom(ref('multi'), { key: privPem, format: 'cyclonedx-json' });
    expect(res.subject.digest).toBe(host.manifest.digest);
    const v = await verifyAttestations(`docker://${reg.host}/attest/app@${host.manifest.digest}`, { key: pubFile });
    expect(v.verified).toHaveLength(2);
    expect((v.verified[0]!.statement.predicate as { metadata: { component: { version: string } } }).metadata.component.version).toBe(host.manifest.digest);
  });
});

describe('bad input', () => {
  it('refuses to attach to a subject the repository does not have, and writes nothing', async () => {
    const missing = digestBytes('no such image') as Digest;
    await expect(attachSbom(`docker://${reg.host}/attest/app@${missing}`, { key: privPem })).rejects.toThrow(
      /subject image is not in the repository.*nothing was attached/,
    );
    await expect(
      attachStatement(`docker://${reg.host}/attest/app@${missing}`, (s) => makeStatement(s, 'https://example.com/p', { a: 1 }), { key: privPem }),
    ).rejects.toThrow(/subject image is not in the repository.*nothing was attached/);
    expect(await headManifest(client, 'attest/app', referrersTag(missing))).toBeUndefined();
    expect(await headManifest(client, 'attest/app', `${referrersTag(missing)}.att`)).toBeUndefined();
  });

  it('refuses a statement whose subject is another image', async () => {
    const st = makeStatement({ name: 'x', digest: other.manifest.digest }, 'https://example.com/p', { a: 1 });
    await expect(attachStatement(ref('1.0'), st, { key: privPem })).rejects.toThrow(/does not name .*nothing was attached/);
  });

  it("rejects a referrer listed in the image's fallback index whose subject is another image", async () => {
    const attached = await attachStatement(ref('other'), (s) => makeStatement(s, 'https://example.com/moved', { a: 1 }), { key: privPem, cosignTag: false });
    // Copy that referrer's entry into the first image's fallback index, as a forger with push access could.
    const tag = referrersTag(image.manifest.digest);
    const raw = await getManifest(client, 'attest/app', tag);
    const index = JSON.parse(raw.bytes.toString()) as ImageIndex;
    const foreign = JSON.parse((await getManifest(client, 'attest/app', referrersTag(other.manifest.digest))).bytes.toString()) as ImageIndex;
    const entry = foreign.manifests.find((m) => m.digest === attached.referrer!.digest)!;
    await putManifest(client, 'attest/app', tag, encodeManifest({ ...index, manifests: [...index.manifests, entry] }));
    const res = await verifyAttestations(ref('1.0'), { key: pubFile, predicateType: 'https://example.com/moved' });
    expect(res.verified).toEqual([]);
    const r = res.rejected.find((x) => x.manifest === attached.referrer!.digest)!;
    expect(r.reason).toBe(`referrer names subject ${other.manifest.digest}, not this image (${image.manifest.digest})`);
  });

  it('refuses to read attestations of an image that does not exist', async () => {
    await expect(verifyAttestations(ref('nope'), { key: pubFile })).rejects.toThrow(/image not found/);
  });
});
