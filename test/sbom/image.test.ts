import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { generateSbom, type Catalog, type SbomPackage } from '../../src/sbom/index.js';
import { parseImageName } from '../../src/transports/index.js';
import { REPO_ROOT } from '../cli/stevedore.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import {
  buildGoBinary,
  copyrightItems,
  DEB_PACKAGES,
  DOC_LINKED,
  dpkgStanzas,
  dpkgTruth,
  npmPackages,
  pythonMetadata,
  STATUS_D_PACKAGE,
  type GoTruth,
  type NpmTruth,
  type PyTruth,
} from './content.js';
import { buildLayeredImage, type BuiltImage, type LayerItem } from './layered-image.js';

const temps = new TempDirs();
let reg: TestRegistry;
let full: BuiltImage;
let pruned: BuiltImage;
let go: GoTruth;
let py: PyTruth[];
let npm: NpmTruth[];
let lockfilePackages: { name: string; version: string }[];
let foreignOptional: { name: string; version: string }[];

/** Removed by the last layer of the pruned image. */
const REMOVED_DEB = 'curl';
const REMOVED_PY = 'distro';
const REMOVED_NPM_DIR = 'yaml';
const OPAQUE_NPM_SCOPE = '@kubernetes';

beforeAll(async () => {
  reg = await startRegistry({ name: 'sbom' });
  go = await buildGoBinary(await temps.make('sbom-go'));
  py = await pythonMetadata();
  npm = await npmPackages(join(REPO_ROOT, 'node_modules'), 'app/node_modules');
  const lock = JSON.parse(await readFile(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version?: string; name?: string; link?: boolean; optional?: boolean; os?: string[] }>;
  };
  lockfilePackages = Object.entries(lock.packages)
    // npm installed exactly the optional packages meant for this machine's platform, which the image's is.
    .filter(([k, v]) => k !== '' && !v.link && v.version && (!v.optional || existsSync(join(REPO_ROOT, k, 'package.json'))))
    .map(([k, v]) => ({ name: v.name ?? k.slice(k.lastIndexOf('node_modules/') + 'node_modules/'.length), version: v.version! }));
  foreignOptional = Object.entries(lock.packages)
    .filter(([k, v]) => v.optional && Array.isArray(v.os) && !v.os.includes('linux') && !npm.some((n) => `node_modules/${n.dir}` === k))
    .map(([k, v]) => ({ name: k.slice(k.lastIndexOf('node_modules/') + 'node_modules/'.length), version: v.version! }));

  const base: LayerItem[] = [
    { path: 'etc/os-release', from: '/etc/os-release' },
    { path: 'var/lib/dpkg/status', content: await dpkgStanzas(DEB_PACKAGES) },
    { path: `var/lib/dpkg/status.d/${STATUS_D_PACKAGE}`, content: await dpkgStanzas([STATUS_D_PACKAGE]) },
    { path: `var/lib/dpkg/status.d/${STATUS_D_PACKAGE}.md5sums`, content: 'd41d8cd98f00b204e9800998ecf8427e  bin/hostname\n' },
    ...(await copyrightItems(DEB_PACKAGES)),
  ];
  const runtimes: LayerItem[] = [...py.map((p) => p.item), { path: 'usr/local/bin/hello', from: go.binary }];
  const app: LayerItem[] = [...npm.map((n) => n.item), { path: 'app/package-lock.json', from: join(REPO_ROOT, 'package-lock.json') }];
  const removals: LayerItem[] = [
    { path: 'var/lib/dpkg/status', content: await dpkgStanzas(DEB_PACKAGES.filter((p) => p !== REMOVED_DEB)) },
    { path: `var/lib/dpkg/status.d/${STATUS_D_PACKAGE}`, whiteout: true },
    { path: `usr/lib/python3/dist-packages/${py.find((p) => p.name === REMOVED_PY)!.dir}`, whiteout: true },
    { path: `app/node_modules/${REMOVED_NPM_DIR}`, whiteout: true },
    { path: `app/node_modules/${OPAQUE_NPM_SCOPE}`, opaque: true },
    { path: 'app/package-lock.json', whiteout: true },
  ];
  const layout = await temps.make('sbom-layout');
  full = await buildLayeredImage(layout, 'full', [base, runtimes, app]);
  pruned = await buildLayeredImage(layout, 'pruned', [base, runtimes, app, removals]);
  await copyReference(parseImageName(full.ociRef), parseImageName(`docker://${reg.host}/sbom/app:full`));
  await copyReference(parseImageName(pruned.ociRef), parseImageName(`docker://${reg.host}/sbom/app:pruned`));
}, 300_000);

afterAll(async () => {
  await reg?.stop();
  await temps.cleanup();
});

function find(c: Catalog, type: string, name: string): SbomPackage[] {
  return c.packages.filter((p) => p.type === type && p.name === name);
}

describe('catalog of a real multi-layer image read from a registry', () => {
  let catalog: Catalog;
  beforeAll(async () => {
    catalog = (await generateSbom(`docker://${reg.host}/sbom/app:full`)).catalog;
  }, 120_000);

  it("lists every Debian package of the dpkg database and status.d with dpkg-query's version and architecture, from the base layer", async () => {
    const truth = await dpkgTruth([...DEB_PACKAGES, STATUS_D_PACKAGE]);
    const debs = catalog.packages.filter((p) => p.type === 'deb');
    expect(debs.map((p) => `${p.name} ${p.version} ${p.arch}`).sort()).toEqual(truth.map((t) => `${t.name} ${t.version} ${t.arch}`).sort());
    for (const p of debs) expect(p.layer).toBe(full.layers[0]!.digest);
    expect(find(catalog, 'deb', STATUS_D_PACKAGE)[0]!.path).toBe(`/var/lib/dpkg/status.d/${STATUS_D_PACKAGE}`);
  });

  it('writes Debian purls with distro, arch and epoch, and reads licenses from DEP-5 copyright files', () => {
    expect(catalog.distro).toMatchObject({ id: 'debian', versionId: '12' });
    const zlib = find(catalog, 'deb', 'zlib1g')[0]!;
    expect(zlib.purl).toBe(`pkg:deb/debian/zlib1g@${zlib.version}?arch=amd64&distro=debian-12&upstream=zlib`);
    expect(zlib.version).toMatch(/^1:/);
    expect(zlib.licenses).toContain('Zlib');
    expect(find(catalog, 'deb', 'bash')[0]!.licenses).toContain('GPL-3+');
    // Its doc directory is a symlink to another package's, whose copyright covers it.
    expect(find(catalog, 'deb', DOC_LINKED.pkg)[0]!.licenses).toEqual(find(catalog, 'deb', DOC_LINKED.target)[0]!.licenses);
    expect(find(catalog, 'deb', DOC_LINKED.pkg)[0]!.licenses.length).toBeGreaterThan(0);
  });

  it("finds the Go binary's main module, its replaced dependency and the standard library, as go version -m reports them", () => {
    const gos = catalog.packages.filter((p) => p.type === 'golang');
    const std = go.goVersion.replace(/^go/, '');
    expect(gos.map((p) => p.purl).sort()).toEqual(
      [
        `pkg:golang/example.com/hello@${go.main.version}`,
        ...go.deps.map((d) => `pkg:golang/example.com/greet@${d.version}`),
        `pkg:golang/stdlib@${std}`,
      ].sort(),
    );
    for (const p of gos) {
      expect(p.layer).toBe(full.layers[1]!.digest);
      expect(p.path).toBe('/usr/local/bin/hello');
    }
  });

  it('finds every Python distribution (dist-info and egg-info) with a normalised pypi purl', () => {
    const pys = catalog.packages.filter((p) => p.type === 'pypi');
    const expected = new Set(py.map((p) => `${p.name.toLowerCase().replace(/[-_.]+/g, '-')}@${p.version}`));
    expect(new Set(pys.map((p) => p.purl.replace(/^pkg:pypi\//, '')))).toEqual(expected);
    const yaml = pys.find((p) => p.name === 'PyYAML');
    expect(yaml?.purl).toBe('pkg:pypi/pyyaml@6.0');
    expect(yaml?.licenses).toEqual(['MIT']);
  });

  it("finds every installed npm package and every package the lockfile pins for the image's platform", () => {
    const npms = catalog.packages.filter((p) => p.type === 'npm');
    const have = new Set(npms.map((p) => `${p.name}@${p.version}`));
    for (const n of npm) expect(have, `${n.name}@${n.version}`).toContain(`${n.name}@${n.version}`);
    for (const n of lockfilePackages) expect(have, `${n.name}@${n.version} from the lockfile`).toContain(`${n.name}@${n.version}`);
    expect(npms.filter((p) => p.foundBy === 'npm-lock').length).toBeGreaterThan(0);
    // Optional packages pinned for other systems (darwin, win32, android builds of native bindings) are not in the image.
    expect(foreignOptional.length).toBeGreaterThan(0);
    for (const n of foreignOptional) expect(have).not.toContain(`${n.name}@${n.version}`);
    const scoped = npms.find((p) => p.name === '@kubernetes/client-node')!;
    expect(scoped.purl).toBe(`pkg:npm/%40kubernetes/client-node@${scoped.version}`);
    expect(scoped.foundBy).toBe('npm-package');
    expect(scoped.licenses).toEqual(['Apache-2.0']);
  });
});

describe('whiteouts, opaque directories and rewritten databases in a later layer', () => {
  let before: Catalog;
  let after: Catalog;
  beforeAll(async () => {
    [before, after] = await Promise.all([
      generateSbom(`docker://${reg.host}/sbom/app:full`).then((r) => r.catalog),
      generateSbom(`docker://${reg.host}/sbom/app:pruned`).then((r) => r.catalog),
    ]);
  }, 120_000);

  it('drops a Debian package removed from the rewritten database and keeps the others attributed to the base layer', () => {
    expect(find(before, 'deb', REMOVED_DEB)).toHaveLength(1);
    expect(find(after, 'deb', REMOVED_DEB)).toHaveLength(0);
    const debs = after.packages.filter((p) => p.type === 'deb');
    expect(debs).toHaveLength(DEB_PACKAGES.length - 1);
    for (const p of debs) expect(p.layer, p.name).toBe(pruned.layers[0]!.digest);
  });

  it('drops the status.d package, the Python distribution and the npm packages whose files a whiteout or an opaque directory deleted', () => {
    expect(find(after, 'deb', STATUS_D_PACKAGE)).toHaveLength(0);
    expect(find(before, 'pypi', REMOVED_PY)).toHaveLength(1);
    expect(find(after, 'pypi', REMOVED_PY)).toHaveLength(0);
    expect(find(after, 'pypi', 'PyYAML')).toHaveLength(1);
    expect(find(after, 'npm', 'yaml')).toHaveLength(0);
    expect(after.packages.filter((p) => p.type === 'npm' && p.name.startsWith(`${OPAQUE_NPM_SCOPE}/`))).toHaveLength(0);
    const kept = npm.filter((n) => n.dir !== REMOVED_NPM_DIR && !n.dir.startsWith(`${OPAQUE_NPM_SCOPE}/`));
    expect(
      after.packages
        .filter((p) => p.type === 'npm')
        .map((p) => `${p.name}@${p.version}`)
        .sort(),
    ).toEqual(kept.map((n) => `${n.name}@${n.version}`).sort());
  });

  it('reads the same catalog from the OCI layout as from the registry', async () => {
    const local = (await generateSbom(pruned.ociRef)).catalog;
    expect(local.packages.map((p) => `${p.purl} ${p.layer}`)).toEqual(after.packages.map((p) => `${p.purl} ${p.layer}`));
    expect(local.image.digest).toBe(after.image.digest);
  });

  it('reads the same packages from docker-archive and dir copies (Docker media types, same layers)', async () => {
    const dir = await temps.make('sbom-transports');
    for (const dest of [`docker-archive:${dir}/app.tar:app:pruned`, `dir:${dir}/dir`]) {
      await copyReference(parseImageName(pruned.ociRef), parseImageName(dest));
      const c = (await generateSbom(dest)).catalog;
      expect(
        c.packages.map((p) => p.purl),
        dest,
      ).toEqual(after.packages.map((p) => p.purl));
      expect(new Set(c.packages.map((p) => p.layer)).size, dest).toBe(new Set(after.packages.map((p) => p.layer)).size);
    }
  });
});
