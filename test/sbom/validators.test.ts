/**
 * Our SPDX and CycloneDX documents for a Debian-like image, checked by the official validators:
 * spdx-tools' `pyspdxtools` (SPDX 2.3: schema, identifiers, license expressions against the
 * license list and the document's LicenseRefs, relationship targets) and cyclonedx-python-lib's
 * strict JSON-schema validation for CycloneDX 1.6. Both come from `make sbom-validators`
 * (hack/syft.mk, part of `make test`), a pinned venv in the cache.
 *
 * Each validator is first shown a broken copy of our document, so a validator that accepts
 * everything cannot make this test pass.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSbom } from '../../src/sbom/index.js';
import { REPO_ROOT } from '../cli/stevedore.js';
import { runCommand } from '../../hack/lib/harness/procs.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { buildGoBinary, npmPackages, pythonMetadata } from './content.js';
import { buildLayeredImage, type LayerItem } from './layered-image.js';

const VENV = process.env.SBOM_VENV ?? join(process.env.STEVEDORE_CACHE ?? join(homedir(), '.cache', 'stevedore'), 'venv-sbom-validators');
const temps = new TempDirs();
let dir: string;
let spdxFile: string;
let cdxFile: string;

const CDX_CHECK = `
import sys
from cyclonedx.validation.json import JsonStrictValidator
from cyclonedx.schema import SchemaVersion
err = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())
print(err if err is not None else "valid")
sys.exit(1 if err is not None else 0)
`;

function pyspdxtools(file: string) {
  return runCommand(join(VENV, 'bin', 'pyspdxtools'), ['-i', file], { timeoutMs: 300_000 });
}
function cdxValidate(file: string) {
  return runCommand(join(VENV, 'bin', 'python'), ['-c', CDX_CHECK, file], { timeoutMs: 120_000 });
}

beforeAll(async () => {
  if (!existsSync(join(VENV, 'bin', 'pyspdxtools'))) throw new Error(`${VENV} has no validators: run "make sbom-validators" (hack/syft.mk) first`);
  dir = await temps.make('sbom-validators');
  const docs: LayerItem[] = [];
  for (const pkg of await readdir('/usr/share/doc')) {
    if (existsSync(`/usr/share/doc/${pkg}/copyright`)) docs.push({ path: `usr/share/doc/${pkg}/copyright`, from: `/usr/share/doc/${pkg}/copyright` });
  }
  const go = await buildGoBinary(await temps.make('validators-go'));
  const image = await buildLayeredImage(join(dir, 'layout'), 'debian', [
    [{ path: 'etc/os-release', from: '/etc/os-release' }, { path: 'var/lib/dpkg/status', from: '/var/lib/dpkg/status' }, ...docs],
    [...(await pythonMetadata()).map((p) => p.item), { path: 'usr/local/bin/hello', from: go.binary }],
    [
      ...(await npmPackages(join(REPO_ROOT, 'node_modules'), 'app/node_modules')).map((n) => n.item),
      { path: 'app/package-lock.json', from: join(REPO_ROOT, 'package-lock.json') },
    ],
  ]);
  spdxFile = join(dir, 'spdx.json');
  cdxFile = join(dir, 'cdx.json');
  await writeFile(spdxFile, JSON.stringify((await generateSbom(image.ociRef, { format: 'spdx-json' })).document));
  await writeFile(cdxFile, JSON.stringify((await generateSbom(image.ociRef, { format: 'cyclonedx-json' })).document));
}, 300_000);

afterAll(() => temps.cleanup());

describe('official validators', () => {
  it('pyspdxtools accepts our SPDX 2.3 document (and refuses a broken copy)', async () => {
    const doc = JSON.parse(await readFile(spdxFile, 'utf8'));
    expect(doc.packages.length).toBeGreaterThan(1000);
    const broken = join(dir, 'broken-spdx.json');
    doc.packages[1].licenseDeclared = 'LicenseRef-never-defined';
    await writeFile(broken, JSON.stringify(doc));
    const bad = await pyspdxtools(broken);
    expect(`${bad.stdout}${bad.stderr}`).toMatch(/document is invalid/i);
    const res = await pyspdxtools(spdxFile);
    expect(res.code, res.stderr).toBe(0);
    expect(`${res.stdout}${res.stderr}`).not.toMatch(/invalid|error/i);
  });

  it('cyclonedx-python-lib accepts our CycloneDX 1.6 document against the strict schema (and refuses a broken copy)', async () => {
    const doc = JSON.parse(await readFile(cdxFile, 'utf8'));
    expect(doc.components.length).toBeGreaterThan(1000);
    const broken = join(dir, 'broken-cdx.json');
    doc.components[0].licenses = [{ license: { id: 'Not-A-License-Id' } }];
    await writeFile(broken, JSON.stringify(doc));
    expect((await cdxValidate(broken)).code).toBe(1);
    const res = await cdxValidate(cdxFile);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout.trim()).toBe('valid');
  });
});
