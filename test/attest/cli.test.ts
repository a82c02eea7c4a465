import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { digestBytes } from '../../src/oci/digest.js';
import { parseImageName } from '../../src/transports/index.js';
import { cleanupCli, cliTempDir, jsonLines, stevedore } from '../cli/stevedore.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { dpkgStanzas } from '../sbom/content.js';
import { buildLayeredImage, type BuiltImage } from '../sbom/layered-image.js';

let reg: TestRegistry;
let dir: string;
let image: BuiltImage;
let keyFile: string;
let pubFile: string;

beforeAll(async () => {
  reg = await startRegistry({ name: 'sbom-cli' });
  dir = await cliTempDir('sbom-cli');
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  keyFile = join(dir, 'key.pem');
  pubFile = join(dir, 'key.pub');
  await writeFile(keyFile, keys.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  await writeFile(pubFile, keys.publicKey.export({ type: 'spki', format: 'pem' }));
  image = await buildLayeredImage(join(dir, 'layout'), 'deb', [
    [
      { path: 'etc/os-release', from: '/etc/os-release' },
      { path: 'var/lib/dpkg/status', content: await dpkgStanzas(['bash', 'sed']) },
    ],
  ]);
  await copyReference(parseImageName(image.ociRef), parseImageName(`docker://${reg.host}/cli/app:1`));
}, 180_000);

afterAll(async () => {
  await reg?.stop();
  await cleanupCli();
});

describe('stevedore sbom', () => {
  it('prints SPDX by default and writes CycloneDX to a file with --format and -o', async () => {
    const spdx = await stevedore(['sbom', `docker://${reg.host}/cli/app:1`]);
    expect(spdx.code, spdx.stderr).toBe(0);
    const doc = JSON.parse(spdx.stdout);
    expect(doc.spdxVersion).toBe('SPDX-2.3');
    expect(doc.packages.map((p: { name: string }) => p.name).sort()).toEqual(['bash', `${reg.host}/cli/app`, 'sed'].sort());
    const out = join(dir, 'bom.json');
    const cdx = await stevedore(['sbom', '--format', 'cyclonedx-json', '-o', out, image.ociRef]);
    expect(cdx.code, cdx.stderr).toBe(0);
    expect(cdx.stdout).toBe('');
    const bom = JSON.parse(await readFile(out, 'utf8'));
    expect(bom.specVersion).toBe('1.6');
    expect(bom.components).toHaveLength(2);
  });

  it('--attach signs and attaches the SBOM, and verify-attestation accepts it', async () => {
    const res = await stevedore(['sbom', '--attach', '--key', keyFile, `docker://${reg.host}/cli/app:1`]);
    expect(res.code, res.stderr).toBe(0);
    const attached = JSON.parse(res.stdout);
    expect(attached.subject.digest).toBe(image.manifest.digest);
    expect(attached.referrer.via).toBe('tag');
    const verified = await stevedore(['verify-attestation', '--key', pubFile, '--type', 'spdx', `docker://${reg.host}/cli/app:1`]);
    expect(verified.code, verified.stderr).toBe(0);
    const lines = jsonLines(verified.stdout);
    expect(lines.map((l) => l.source).sort()).toEqual(['cosign-tag', 'referrer']);
  });

  it('--format table lists one package per line with its layer', async () => {
    const res = await stevedore(['sbom', '--format', 'table', image.ociRef]);
    expect(res.code, res.stderr).toBe(0);
    const lines = res.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/));
    expect(lines[0]).toEqual(['NAME', 'VERSION', 'TYPE', 'LAYER']);
    expect(lines.slice(1).map((l) => [l[0], l[2], l[3]])).toEqual([
      ['bash', 'deb', image.layers[0]!.digest.slice(7, 19)],
      ['sed', 'deb', image.layers[0]!.digest.slice(7, 19)],
    ]);
  });

  it('refuses an unknown format and an image that does not exist, saying why', async () => {
    const fmt = await stevedore(['sbom', '--format', 'xml', image.ociRef]);
    expect(fmt.code).toBe(125);
    expect(fmt.stderr).toContain('unknown SBOM format "xml"');
    const missing = await stevedore(['sbom', '--attach', '--key', keyFile, `docker://${reg.host}/cli/app@${digestBytes('nothing')}`]);
    expect(missing.code).toBe(125);
    expect(missing.stderr).toMatch(/subject image is not in the repository .*nothing was attached/);
  });
});

describe('stevedore attest and verify-attestation', () => {
  it('attests a SLSA provenance predicate from a file; verification with the wrong key fails with the reason', async () => {
    const predicate = join(dir, 'prov.json');
    await writeFile(
      predicate,
      JSON.stringify({
        buildDefinition: { buildType: 'https://stevedore.dev/build/containerfile/v1', externalParameters: {} },
        runDetails: { builder: { id: 'https://stevedore.dev/builder@v0.1.0' } },
      }),
    );
    const res = await stevedore(['attest', '--key', keyFile, '--predicate', predicate, '--type', 'slsaprovenance', `docker://${reg.host}/cli/app:1`]);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).predicateType).toBe('https://slsa.dev/provenance/v1');
    const ok = await stevedore(['verify-attestation', '--key', pubFile, '--type', 'slsaprovenance', `docker://${reg.host}/cli/app:1`]);
    expect(ok.code, ok.stderr).toBe(0);
    const wrongPub = join(dir, 'wrong.pub');
    await writeFile(wrongPub, generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }));
    const bad = await stevedore(['verify-attestation', '--key', wrongPub, `docker://${reg.host}/cli/app:1`]);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain('does not verify with the given public key');
    expect(bad.stderr).toMatch(/attestation\(s\) failed verification \[ATTESTATION_INVALID\]/);
  });

  it('refuses a predicate that is not a JSON object', async () => {
    const predicate = join(dir, 'bad.json');
    await writeFile(predicate, '[1,2]');
    const res = await stevedore(['attest', '--key', keyFile, '--predicate', predicate, `docker://${reg.host}/cli/app:1`]);
    expect(res.code).toBe(125);
    expect(res.stderr).toContain('must be a JSON object');
  });
});

describe('stevedore sbom of a missing image', () => {
  it('says the image was not found', async () => {
    const res = await stevedore(['sbom', `docker://${reg.host}/cli/none:1`]);
    expect(res.code).toBe(125);
    expect(res.stderr).toContain(`docker://${reg.host}/cli/none:1: image not found, nothing to catalog [NOT_FOUND]`);
  });
});
