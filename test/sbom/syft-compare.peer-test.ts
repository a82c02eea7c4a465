/**
 * Our catalog against syft's on the same Debian-like image made by the harness: this machine's
 * whole dpkg database with its copyright files and os-release, its Python distributions, the
 * repository's node_modules and lockfile, and a Go binary. Run with `make test-sbom-peers` (it builds the
 * pinned syft through hack/syft.mk first); it is not part of `make test`, because syft takes longer
 * to build than the test tools there.
 *
 * Packages are compared by ecosystem, normalised name and version. The figures are printed; the
 * test fails when fewer than 95% of the packages syft finds are ours too, when the overlap of the
 * two lists (Jaccard) is below 95%, or when the Debian or Python lists differ at all.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSbom, type Catalog } from '../../src/sbom/index.js';
import { REPO_ROOT } from '../cli/stevedore.js';
import { runCommand } from '../../hack/lib/harness/procs.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { buildGoBinary, npmPackages, pythonMetadata } from './content.js';
import { buildLayeredImage, type BuiltImage, type LayerItem } from './layered-image.js';

const SYFT = process.env.SYFT ?? join(process.env.STEVEDORE_CACHE ?? join(homedir(), '.cache', 'stevedore'), 'bin', 'syft-v1.57.0');
const temps = new TempDirs();
let image: BuiltImage;
let ours: Catalog;
const timings: Record<string, string> = {};
let syft: { name: string; version: string; type: string; purl?: string }[];

/** syft's package types as purl types. */
const TYPES: Record<string, string> = { deb: 'deb', apk: 'apk', python: 'pypi', npm: 'npm', 'go-module': 'golang' };
const key = (type: string, name: string, version: string): string =>
  `${type} ${type === 'pypi' ? name.toLowerCase().replace(/[-_.]+/g, '-') : name} ${version}`;

beforeAll(async () => {
  if (!existsSync(SYFT)) throw new Error(`${SYFT} is missing: run "make syft" (hack/syft.mk) first`);
  const docs: LayerItem[] = [];
  for (const pkg of await readdir('/usr/share/doc')) {
    if (existsSync(`/usr/share/doc/${pkg}/copyright`)) docs.push({ path: `usr/share/doc/${pkg}/copyright`, from: `/usr/share/doc/${pkg}/copyright` });
  }
  const go = await buildGoBinary(await temps.make('syft-go'));
  const py = await pythonMetadata();
  const npm = await npmPackages(join(REPO_ROOT, 'node_modules'), 'app/node_modules');
  image = await buildLayeredImage(await temps.make('syft-layout'), 'debian', [
    [{ path: 'etc/os-release', from: '/etc/os-release' }, { path: 'var/lib/dpkg/status', from: '/var/lib/dpkg/status' }, ...docs],
    [...py.map((p) => p.item), { path: 'usr/local/bin/hello', from: go.binary }],
    [...npm.map((n) => n.item), { path: 'app/package-lock.json', from: join(REPO_ROOT, 'package-lock.json') }],
  ]);
  let t = performance.now();
  ours = (await generateSbom(image.ociRef)).catalog;
  timings.stevedore = `${((performance.now() - t) / 1000).toFixed(2)} s`;
  t = performance.now();
  const res = await runCommand(SYFT, ['scan', `oci-dir:${image.layoutDir}`, '-o', 'syft-json', '-q'], {
    env: { ...process.env, SYFT_CHECK_FOR_APP_UPDATE: 'false', HOME: await temps.make('syft-home') },
    timeoutMs: 300_000,
  });
  timings.syft = `${((performance.now() - t) / 1000).toFixed(2)} s`;
  if (res.code !== 0) throw new Error(`syft failed (${res.code}): ${res.stderr}`);
  syft = (JSON.parse(res.stdout) as { artifacts: typeof syft }).artifacts;
}, 600_000);

afterAll(() => temps.cleanup());

describe('package list compared with syft', () => {
  it('finds what syft finds in the ecosystems both catalog', async () => {
    const theirs = new Set(syft.filter((a) => TYPES[a.type]).map((a) => key(TYPES[a.type]!, a.name, a.version)));
    const mine = new Set(ours.packages.map((p) => key(p.type, p.name, p.version)));
    const both = [...theirs].filter((k) => mine.has(k));
    const onlyTheirs = [...theirs].filter((k) => !mine.has(k));
    const onlyMine = [...mine].filter((k) => !theirs.has(k));
    const byType = (list: string[]): Record<string, number> =>
      list.reduce<Record<string, number>>((acc, k) => ({ ...acc, [k.split(' ')[0]!]: (acc[k.split(' ')[0]!] ?? 0) + 1 }), {});
    const figures = {
      timings,
      syft: theirs.size,
      stevedore: mine.size,
      both: both.length,
      overlapOfSyft: `${((100 * both.length) / theirs.size).toFixed(1)}%`,
      jaccard: `${((100 * both.length) / (theirs.size + onlyMine.length)).toFixed(1)}%`,
      onlySyft: byType(onlyTheirs),
      onlyStevedore: byType(onlyMine),
      onlySyftExamples: onlyTheirs.slice(0, 10),
      onlyStevedoreExamples: onlyMine.slice(0, 80),
      syftOtherTypes: syft.filter((a) => !TYPES[a.type]).reduce<Record<string, number>>((acc, a) => ({ ...acc, [a.type]: (acc[a.type] ?? 0) + 1 }), {}),
    };
    console.log(`syft comparison: ${JSON.stringify(figures, null, 2)}`);
    expect(both.length / theirs.size).toBeGreaterThanOrEqual(0.95);
    expect(both.length / (theirs.size + onlyMine.length)).toBeGreaterThanOrEqual(0.95);
    // The Debian and Python catalogs agree exactly; the differences are Go versions syft leaves
    // UNKNOWN ("(devel)" main modules, local replacements) and npm packages only we report
    // (nested second versions of a package, optional dependencies of platform bindings).
    for (const t of ['deb', 'pypi']) {
      expect(
        onlyTheirs.filter((k) => k.startsWith(`${t} `)),
        t,
      ).toEqual([]);
      expect(
        onlyMine.filter((k) => k.startsWith(`${t} `)),
        t,
      ).toEqual([]);
    }
    expect(ours.packages.filter((p) => p.type === 'deb').length).toBeGreaterThan(100);
  });
});
