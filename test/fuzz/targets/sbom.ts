import fc from 'fast-check';
import { parseApkInstalled } from '../../../src/sbom/catalogers/apk.js';
import { parseDebianCopyright, parseDpkgStatus } from '../../../src/sbom/catalogers/dpkg.js';
import type { FoundPackage } from '../../../src/sbom/catalogers/found.js';
import { parseNpmLockfile, parseNpmPackageJson } from '../../../src/sbom/catalogers/npm.js';
import { parsePythonMetadata } from '../../../src/sbom/catalogers/python.js';
import { assertContract, bytes, text, type FuzzTarget } from '../lib/target.js';

/** What every cataloger promises: a list of packages with non-empty string names and versions. */
function checkPackages(pkgs: FoundPackage[], what: string): void {
  assertContract(Array.isArray(pkgs), `${what} did not return a list`);
  for (const p of pkgs) {
    assertContract(
      typeof p.name === 'string' && p.name !== '' && typeof p.version === 'string' && p.version !== '',
      `${what} returned a package without name or version: ${JSON.stringify(p).slice(0, 200)}`,
    );
    assertContract(Array.isArray(p.licenses) && p.licenses.every((l) => typeof l === 'string'), `${what} returned non-string licenses`);
  }
}

const CONTRACT = 'any bytes → a list of packages with non-empty string name and version (never throws); ≤ 250 ms + 20 ms/KiB';

const field = (keys: string[]) =>
  fc.tuple(fc.constantFrom(...keys), fc.string({ maxLength: 20 }), fc.array(fc.constantFrom(' cont', '\t.', ' ', ''), { maxLength: 2 }));
const stanzas = (keys: string[], sep: string) =>
  fc
    .array(fc.array(field(keys), { maxLength: 8 }), { maxLength: 4 })
    .map((ss) => bytes(ss.map((fs) => fs.map(([k, v, c]) => `${k}${sep}${v}${c.map((l) => `\n${l}`).join('')}`).join('\n')).join('\n\n')));

export const dpkgTarget: FuzzTarget = {
  name: 'dpkg-status',
  contract: CONTRACT,
  sources: ['src/sbom/catalogers/dpkg.ts', 'src/sbom/catalogers/found.ts'],
  dictionary: [
    'Package: ',
    'Version: ',
    'Status: install ok installed\n',
    'Source: ',
    ' (1.0)',
    'Architecture: amd64\n',
    'License: ',
    ' or ',
    ' and ',
    '\n\n',
    '\n ',
    '\n .\n',
    '\r\n',
    ':',
  ],
  generate: stanzas(['Package', 'Version', 'Status', 'Source', 'Architecture', 'License', 'Files'], ': '),
  run(input) {
    const t = text(input);
    checkPackages(parseDpkgStatus(t), 'parseDpkgStatus');
    assertContract(
      parseDebianCopyright(t).every((l) => typeof l === 'string' && l !== ''),
      'empty license from a copyright file',
    );
  },
};

export const apkTarget: FuzzTarget = {
  name: 'apk-installed',
  contract: CONTRACT,
  sources: ['src/sbom/catalogers/apk.ts', 'src/sbom/catalogers/found.ts'],
  dictionary: ['P:', 'V:', 'A:', 'L:', 'o:', 'C:', 'F:', 'R:', '\n\n', '\n', ' '],
  generate: stanzas(['P', 'V', 'A', 'L', 'o', 'T'], ':'),
  run(input) {
    checkPackages(parseApkInstalled(text(input)), 'parseApkInstalled');
  },
};

export const pythonTarget: FuzzTarget = {
  name: 'python-metadata',
  contract: CONTRACT,
  sources: ['src/sbom/catalogers/python.ts', 'src/sbom/catalogers/found.ts'],
  dictionary: [
    'Metadata-Version: 2.1\n',
    'Name: ',
    'Version: ',
    'License: ',
    'License-Expression: ',
    'Classifier: License :: OSI Approved :: MIT License\n',
    'UNKNOWN',
    '\n\n',
    '\n ',
    '::',
  ],
  generate: stanzas(['Metadata-Version', 'Name', 'Version', 'License', 'License-Expression', 'Classifier', 'Summary'], ': '),
  run(input) {
    checkPackages(parsePythonMetadata(text(input)), 'parsePythonMetadata');
  },
};

export const npmTarget: FuzzTarget = {
  name: 'npm-package',
  contract: `package.json and package-lock.json: ${CONTRACT}`,
  sources: ['src/sbom/catalogers/npm.ts'],
  dictionary: [
    '"name":"a"',
    '"version":"1.0.0"',
    '"license":"MIT"',
    '"licenses":[{"type":"MIT"}]',
    '"lockfileVersion":3',
    '"packages":{',
    '"node_modules/a":{',
    '"dependencies":{',
    '"requires":true',
    '"link":true',
    '"optional":true',
    '"os":["!linux"]',
    '"cpu":["x64"]',
    '"":{',
    '{',
    '}',
    '[',
    ']',
    'null',
    ',',
  ],
  generate: fc
    .oneof(
      fc.record(
        {
          name: fc.oneof(fc.string(), fc.constant(1)),
          version: fc.oneof(fc.string(), fc.constant(null)),
          license: fc.oneof(fc.string(), fc.record({ type: fc.string() })),
          licenses: fc.oneof(fc.array(fc.oneof(fc.record({ type: fc.string() }), fc.constant(null))), fc.constant('MIT')),
        },
        { requiredKeys: [] },
      ),
      fc.record(
        {
          lockfileVersion: fc.constantFrom(1, 2, 3, '3'),
          packages: fc.dictionary(
            fc.constantFrom('', 'node_modules/a', 'node_modules/@s/b', 'node_modules/a/node_modules/c', 'x'),
            fc.oneof(
              fc.record(
                {
                  version: fc.oneof(fc.string(), fc.constant(2)),
                  name: fc.string(),
                  link: fc.boolean(),
                  optional: fc.boolean(),
                  os: fc.oneof(fc.array(fc.constantFrom('linux', '!linux', 'darwin')), fc.constant('linux')),
                  cpu: fc.array(fc.constantFrom('x64', '!arm64')),
                  license: fc.string(),
                },
                { requiredKeys: [] },
              ),
              fc.constant(null),
            ),
          ),
          dependencies: fc.dictionary(
            fc.string(),
            fc.oneof(fc.record({ version: fc.string(), dependencies: fc.object() }, { requiredKeys: [] }), fc.constant(null), fc.constant('1')),
          ),
        },
        { requiredKeys: [] },
      ),
    )
    .map((d) => bytes(JSON.stringify(d))),
  run(input) {
    const t = text(input);
    checkPackages(parseNpmPackageJson(t), 'parseNpmPackageJson');
    checkPackages(parseNpmLockfile(t, { os: 'linux', architecture: 'amd64' }), 'parseNpmLockfile');
    checkPackages(parseNpmLockfile(t), 'parseNpmLockfile');
  },
};
