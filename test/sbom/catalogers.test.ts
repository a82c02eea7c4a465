import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseApkInstalled } from '../../src/sbom/catalogers/apk.js';
import { docLink, parseDebianCopyright, parseDpkgStatus } from '../../src/sbom/catalogers/dpkg.js';
import { GoBuildInfoScanner, goPackages } from '../../src/sbom/catalogers/golang.js';
import { isNpmLockfile, isNpmPackageJson, parseNpmLockfile, parseNpmPackageJson } from '../../src/sbom/catalogers/npm.js';
import { isPythonMetadata, parsePythonMetadata } from '../../src/sbom/catalogers/python.js';
import { packagePurl } from '../../src/sbom/package-purl.js';
import { formatPurl } from '../../src/sbom/purl.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { buildGoBinary, type GoTruth } from './content.js';

const temps = new TempDirs();
let go: GoTruth;
beforeAll(async () => {
  go = await buildGoBinary(await temps.make('sbom-go-unit'));
}, 200_000);
afterAll(() => temps.cleanup());

describe('Go build info', () => {
  it('is found however the binary is split into chunks, and matches go version -m', async () => {
    const bin = await readFile(go.binary);
    for (const size of [1, 7, 13, 16, 4096, 65536, bin.length]) {
      const s = new GoBuildInfoScanner();
      for (let i = 0; i < bin.length && !s.done; i += size) s.push(bin.subarray(i, i + size));
      const info = s.finish();
      expect(info, `chunk size ${size}`).toBeDefined();
      expect(info!.goVersion).toBe(go.goVersion);
      expect(info!.main).toMatchObject(go.main);
      expect(info!.deps.map((d) => ({ path: d.path, version: d.version }))).toEqual(go.deps);
      expect(info!.deps[0]!.replace?.path).toBe('./greet');
    }
  });

  it('ignores non-executables and a magic string that is not at a 16-byte boundary or does not decode', () => {
    const text = new GoBuildInfoScanner();
    text.push(Buffer.from('#!/bin/sh\n\xff Go buildinf:', 'latin1'));
    expect(text.finish()).toBeUndefined();
    const elf = Buffer.alloc(256);
    elf.write('\x7fELF', 0, 'latin1');
    elf.write('\xff Go buildinf:', 33, 'latin1'); // misaligned
    elf.write('\xff Go buildinf:\x08\x02', 64, 'latin1'); // aligned, then a garbage length
    elf.fill(0xff, 80, 100);
    const s = new GoBuildInfoScanner();
    s.push(elf);
    expect(s.finish()).toBeUndefined();
  });

  it('reports the main module, dependencies as replaced, and the standard library', () => {
    const pkgs = goPackages({
      goVersion: 'go1.22.1 X:boringcrypto',
      main: { path: 'example.com/app', version: 'v1.0.0' },
      deps: [
        { path: 'golang.org/x/net', version: 'v0.1.0', replace: { path: 'golang.org/x/net', version: 'v0.2.0' } },
        { path: 'example.com/local', version: 'v0.0.0', replace: { path: '../local', version: '(devel)' } },
      ],
      settings: {},
    });
    expect(pkgs.map((p) => packagePurl(p, undefined))).toEqual([
      'pkg:golang/example.com/app@v1.0.0',
      'pkg:golang/golang.org/x/net@v0.2.0',
      'pkg:golang/example.com/local@v0.0.0',
      'pkg:golang/stdlib@1.22.1',
    ]);
  });
});

describe('package databases and metadata', () => {
  it('dpkg: skips packages whose files are gone, keeps source packages, half-installed counts', () => {
    const pkgs = parseDpkgStatus(
      [
        'Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\nSource: a-src (1.0-0)\nDescription: x\n long text\n .\n more',
        'Package: b\nStatus: deinstall ok config-files\nVersion: 2',
        'Package: c\nStatus: install ok half-configured\nVersion: 3\nArchitecture: all',
        'Package: d\nStatus: purge ok not-installed',
      ].join('\n\n'),
    );
    expect(pkgs.map((p) => `${p.name} ${p.version} ${p.arch ?? '-'} ${p.source ?? '-'}`)).toEqual(['a 1.0-1 amd64 a-src@1.0-0', 'c 3 all -']);
  });

  it('dpkg copyright: License fields of DEP-5, split on or/and', () => {
    expect(
      parseDebianCopyright(
        'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: GPL-2+ or Artistic\n\nFiles: x\nLicense: BSD-3-clause\n .\n text\nLicense: GPL-2+',
      ),
    ).toEqual(['GPL-2+', 'Artistic', 'BSD-3-clause']);
  });

  it('dpkg doc links: relative, absolute and ../doc targets name the package directory', () => {
    expect(docLink('usr/share/doc/libffi-dev', 'libffi8')).toEqual({ pkg: 'libffi-dev', target: 'libffi8' });
    expect(docLink('usr/share/doc/a', '/usr/share/doc/b/')).toEqual({ pkg: 'a', target: 'b' });
    expect(docLink('usr/share/doc/a', '../doc/b')).toEqual({ pkg: 'a', target: 'b' });
    expect(docLink('usr/share/doc/a', '/opt/elsewhere/b')).toBeUndefined();
    expect(docLink('usr/share/doc/a/copyright', 'b')).toBeUndefined();
  });

  it('apk: installed database stanzas with license and origin', () => {
    const pkgs = parseApkInstalled(
      'C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nS:383152\nL:MIT\no:musl\n\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\nL:Apache-2.0\no:openssl\n\n',
    );
    expect(pkgs).toHaveLength(2);
    expect(packagePurl(pkgs[1]!, { id: 'alpine', versionId: '3.19.1' })).toBe(
      'pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=alpine-3.19.1&upstream=openssl',
    );
    expect(pkgs[0]!.licenses).toEqual(['MIT']);
  });

  it('npm: installed package.json paths, licenses in all three spellings, lockfiles v1 and v3', () => {
    expect(isNpmPackageJson('app/node_modules/@scope/pkg/package.json')).toBe(true);
    expect(isNpmPackageJson('app/node_modules/pkg/lib/package.json')).toBe(false);
    expect(isNpmPackageJson('app/package.json')).toBe(false);
    expect(isNpmLockfile('app/package-lock.json')).toBe(true);
    expect(isNpmLockfile('app/node_modules/.package-lock.json')).toBe(false);
    expect(parseNpmPackageJson('{"name":"a","version":"1.0.0","license":{"type":"MIT"}}')[0]!.licenses).toEqual(['MIT']);
    expect(parseNpmPackageJson('{"name":"a","version":"1.0.0","licenses":[{"type":"MIT"},{"type":"Apache-2.0"}]}')[0]!.licenses).toEqual(['MIT', 'Apache-2.0']);
    expect(parseNpmPackageJson('{"type":"module"}')).toEqual([]);
    expect(parseNpmPackageJson('not json')).toEqual([]);
    const v3 = parseNpmLockfile(
      JSON.stringify({
        lockfileVersion: 3,
        packages: {
          '': { name: 'root', version: '1.0.0' },
          'node_modules/a': { version: '1.0.0', license: 'ISC' },
          'node_modules/a/node_modules/@s/b': { version: '2.0.0' },
          'node_modules/ws': { link: true },
        },
      }),
    );
    expect(v3.map((p) => `${p.name}@${p.version}`)).toEqual(['a@1.0.0', '@s/b@2.0.0']);
    const platformBound = JSON.stringify({
      lockfileVersion: 3,
      packages: {
        'node_modules/@x/linux-x64': { version: '1.0.0', optional: true, os: ['linux'], cpu: ['x64'] },
        'node_modules/@x/darwin-arm64': { version: '1.0.0', optional: true, os: ['darwin'], cpu: ['arm64'] },
        'node_modules/@x/not-win': { version: '1.0.0', optional: true, os: ['!win32'] },
      },
    });
    expect(parseNpmLockfile(platformBound, { os: 'linux', architecture: 'amd64' }).map((p) => p.name)).toEqual(['@x/linux-x64', '@x/not-win']);
    expect(parseNpmLockfile(platformBound, { os: 'darwin', architecture: 'arm64' }).map((p) => p.name)).toEqual(['@x/darwin-arm64', '@x/not-win']);
    const v1 = parseNpmLockfile(
      JSON.stringify({ lockfileVersion: 1, dependencies: { a: { version: '1.0.0', dependencies: { b: { version: '2.0.0' } } }, c: { version: 'file:../c' } } }),
    );
    expect(v1.map((p) => `${p.name}@${p.version}`)).toEqual(['a@1.0.0', 'b@2.0.0']);
  });

  it('Python: License-Expression first, then a short License, then classifiers', () => {
    expect(isPythonMetadata('usr/lib/python3/dist-packages/x-1.0.dist-info/METADATA')).toBe(true);
    expect(isPythonMetadata('usr/lib/python3/dist-packages/x-1.0.egg-info')).toBe(true);
    expect(
      parsePythonMetadata('Metadata-Version: 2.4\nName: A_b\nVersion: 1\nLicense-Expression: MIT OR Apache-2.0\nLicense: long\n\nbody')[0]!.licenses,
    ).toEqual(['MIT OR Apache-2.0']);
    expect(parsePythonMetadata('Name: a\nVersion: 1\nLicense: UNKNOWN\nClassifier: License :: OSI Approved :: BSD License\n')[0]!.licenses).toEqual([
      'BSD License',
    ]);
    const p = parsePythonMetadata('Name: Zope.Interface\nVersion: 5.0\n\nName: not-a-header\n')[0]!;
    expect(packagePurl(p, undefined)).toBe('pkg:pypi/zope-interface@5.0');
  });

  it('purls percent-encode names and qualifiers but keep epochs and revisions readable', () => {
    expect(
      formatPurl({ type: 'deb', namespace: 'debian', name: 'libstdc++6', version: '1:12.2.0-14', qualifiers: { distro: 'debian-12', arch: 'amd64' } }),
    ).toBe('pkg:deb/debian/libstdc++6@1:12.2.0-14?arch=amd64&distro=debian-12');
    expect(formatPurl({ type: 'npm', namespace: '@types', name: 'node', version: '24.0.0' })).toBe('pkg:npm/%40types/node@24.0.0');
  });
});
