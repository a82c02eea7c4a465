/**
 * Writes the seed corpora (test/fuzz/corpus/<target>/seed-*) from the project's own fixtures and
 * from what its tests make: the build corpus's Containerfiles, manifests and layers made with the
 * engine's own writers, a key pair from generateKeyPair, and so on. Run again after changing a
 * seed; regression inputs (regress-*) are written by hand when a finding is fixed.
 *
 *   node --experimental-transform-types --import ./hack/lib/ts-resolve.ts test/fuzz/seeds.ts
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { stringify } from 'yaml';
import { encodeManifest } from '../../src/oci/manifest.js';
import { digestBytes } from '../../src/oci/digest.js';
import { makeKeyBundle, signStatement } from '../../src/sign/bundle.js';
import { generateKeyPair } from '../../src/sign/keys.js';
import { CORPUS_ROOT, REPO_ROOT } from './lib/corpus.js';
import { writeTar } from './lib/tar-writer.js';
import { goBinary } from './targets/go-buildinfo.js';

function put(target: string, name: string, data: string | Uint8Array): void {
  const dir = join(CORPUS_ROOT, target);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `seed-${name}`), data);
}

// Containerfiles of the build corpus (test/build/corpus/*/Containerfile).
const buildCorpus = join(REPO_ROOT, 'test/build/corpus');
for (const d of readdirSync(buildCorpus)) {
  const f = join(buildCorpus, d, 'Containerfile');
  if (existsSync(f)) put('containerfile', d, readFileSync(f));
}

put('dockerignore', 'basic', '# comment\n*.md\n!README.md\nnode_modules\n**/*.log\n/tmp/**\n');
put('dockerignore', 'classes', '[a-c]?.txt\n[^x]*\n\\#literal\n dir/ \n!dir/keep\n');

const D = digestBytes('layer');
const C = digestBytes('config');
const config = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: C, size: 6 };
const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: D, size: 5 };
const image = encodeManifest({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [layer], annotations: { a: 'b' } });
put('manifest', 'oci-image', image.bytes);
put(
  'manifest',
  'docker-image',
  encodeManifest({ schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json', config, layers: [layer] }).bytes,
);
put(
  'manifest',
  'oci-index',
  encodeManifest({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: image.digest,
        size: image.bytes.length,
        platform: { os: 'linux', architecture: 'amd64' },
      },
    ],
  }).bytes,
);
put(
  'manifest',
  'referrer',
  encodeManifest({
    schemaVersion: 2,
    artifactType: 'application/x',
    config,
    layers: [],
    subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: image.digest, size: 10 },
  }).bytes,
);

put(
  'image-config',
  'basic',
  JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/bin'], Cmd: ['sh'], WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [D] },
    history: [{ created_by: 'x' }],
  }),
);

put(
  'tar-unpack',
  'files',
  writeTar([
    { name: 'etc/', type: '5', mode: 0o755 },
    { name: 'etc/hosts', type: '0', content: Buffer.from('127.0.0.1 localhost\n') },
    { name: 'bin/sh', type: '2', linkname: '/bin/busybox' },
    { name: 'bin/ln', type: '1', linkname: 'etc/hosts' },
  ]),
);
put(
  'tar-unpack',
  'whiteouts',
  writeTar([
    { name: 'etc/.wh.passwd', type: '0' },
    { name: 'a/.wh..wh..opq', type: '0' },
    { name: 'a/b', type: '0', content: Buffer.from('b') },
  ]),
);
put(
  'tar-unpack',
  'pax',
  writeTar([{ name: 'p', type: '0', content: Buffer.from('x'), pax: { path: 'long/'.repeat(30) + 'name', uid: '1000', 'SCHILY.xattr.user.k': 'v' } }]),
);
put('tar-unpack', 'gzip', gzipSync(writeTar([{ name: 'f', type: '0', content: Buffer.from('zipped') }])));
put(
  'tar-unpack',
  'hostile',
  writeTar([
    { name: 'up/sentinel', type: '0', content: Buffer.from('x') },
    { name: 'abs/dir/f', type: '0' },
    { name: 'l', type: '1', linkname: 'up/sentinel' },
    { name: '../x', type: '0' },
  ]),
);

const accept = [{ type: 'insecureAcceptAnything' }];
put('policy', 'default', JSON.stringify({ default: accept }));
put(
  'policy',
  'transports',
  JSON.stringify(
    {
      default: [{ type: 'reject' }],
      transports: {
        docker: {
          'quay.io/ns': [{ type: 'sigstoreSigned', keyPath: '/k.pub', signedIdentity: { type: 'matchRepository' } }],
          '*.example.com': [
            { type: 'signedBy', keyType: 'GPGKeys', keyData: 'QUJD', signedIdentity: { type: 'remapIdentity', prefix: 'q.io', signedPrefix: 'r.io/x' } },
          ],
          'r.io': [{ type: 'sigstoreSigned', fulcio: { caPath: '/ca', oidcIssuer: 'https://i', subjectEmail: 'a@b' }, rekorPublicKeyPath: '/r' }],
        },
        oci: { '/srv/images:v1': accept },
        atomic: { anything: [{ type: 'signedBaseLayer', baseLayerIdentity: { type: 'exactReference', dockerReference: 'busybox:1' } }] },
      },
    },
    null,
    2,
  ),
);

put(
  'sync-config',
  'skopeo',
  stringify({
    'registry.example.com': {
      images: { busybox: [], redis: ['7.2', `sha256:${'a'.repeat(64)}`] },
      'images-by-tag-regex': { nginx: '^1\\.25\\.\\d+$' },
      'images-by-semver': { alpine: '>= 3.18.0' },
      credentials: { username: 'u', password: 'p' },
      'tls-verify': false,
    },
  }),
);
put('sync-config', 'anchors', 'base: &b\n  images: {busybox: []}\nlocalhost:5000: *b\n');

for (const [i, r] of [
  'busybox',
  'docker.io/library/busybox:latest',
  'localhost:5000/a/b:t@sha256:' + '0'.repeat(64),
  '[::1]:5000/x',
  'quay.io/a.b/c__d-e:1.0',
].entries())
  put('reference', String(i), r);

put(
  'auth-config',
  'auths',
  JSON.stringify({
    auths: { 'https://index.docker.io/v1/': { auth: Buffer.from('u:p').toString('base64') }, 'localhost:5000/ns': { username: 'u', password: 'p' } },
  }),
);
put('auth-config', 'legacy', JSON.stringify({ 'q.io': { auth: Buffer.from('a:b').toString('base64'), email: 'x' } }));

// A throwaway key pair (password "fuzz"), generated for these seeds only; it signs nothing.
const pair = generateKeyPair('fuzz');
put('cosign-key', 'encrypted', pair.privatePem);
put('cosign-key', 'public', pair.publicPem);
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
put('cosign-key', 'spki', ec.publicKey.export({ type: 'spki', format: 'pem' }).toString());
put('sigstore-bundle', 'key-bundle', makeKeyBundle(ec.privateKey, signStatement(image.digest)));

put('www-authenticate', 'bearer', 'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"');
put('www-authenticate', 'two', 'Basic realm="r", Bearer realm="https://a/t",error="insufficient_scope",scope="x"');

put(
  'dpkg-status',
  'status',
  'Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc (2.36-9)\nVersion: 2.36-9+deb12u4\nDescription: GNU C Library\n multi-line\n .\n end\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n',
);
put('dpkg-status', 'copyright', 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: GPL-2+ or LGPL-2.1, MIT\n');
put('apk-installed', 'installed', 'C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\no:musl\n\nP:busybox\nV:1.36.1-r5\nL:GPL-2.0-only\n');
put('npm-package', 'package', JSON.stringify({ name: 'left-pad', version: '1.3.0', license: 'WTFPL', licenses: [{ type: 'MIT' }] }));
put(
  'npm-package',
  'lock-v3',
  JSON.stringify({
    lockfileVersion: 3,
    packages: {
      '': { name: 'app' },
      'node_modules/a': { version: '1.0.0', license: 'MIT' },
      'node_modules/@s/b': { version: '2.0.0', optional: true, os: ['darwin'] },
      'node_modules/w': { link: true },
    },
  }),
);
put(
  'npm-package',
  'lock-v1',
  JSON.stringify({ lockfileVersion: 1, dependencies: { a: { version: '1.0.0', dependencies: { b: { version: '2.0.0' } } }, c: { version: 'file:../c' } } }),
);
put(
  'python-metadata',
  'metadata',
  'Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nLicense: Apache 2.0\nClassifier: License :: OSI Approved :: Apache Software License\n\nBody text\n',
);
put('python-metadata', 'expr', 'Metadata-Version: 2.4\nName: x\nVersion: 1\nLicense-Expression: MIT OR Apache-2.0\n');
put(
  'go-buildinfo',
  'elf',
  goBinary(
    'go1.22.1',
    'path\texample.com/app\nmod\texample.com/app\t(devel)\t\ndep\tgolang.org/x/sys\tv0.15.0\th1:abc=\n=>\tgolang.org/x/sys\tv0.16.0\th1:def=\nbuild\tGOOS=linux',
    { pad: 4 },
  ),
);
put('go-buildinfo', 'old', goBinary('go1.17', '', { flags: 0, pad: 2 }));
console.log(`seeds written under ${CORPUS_ROOT}`);
