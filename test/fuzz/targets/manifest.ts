import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { digestBytes, isDigest } from '../../../src/oci/digest.js';
import { parseManifest } from '../../../src/oci/manifest.js';
import { InvalidInputError, TooLargeError } from '../../../src/util/errors.js';
import { assertContract, bytes, refusesWithSync, type FuzzTarget } from '../lib/target.js';

const D = `sha256:${'a'.repeat(64)}`;

const descriptor = fc.record(
  {
    mediaType: fc.constantFrom('application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.config.v1+json', '', 'x'),
    digest: fc.constantFrom(D, 'sha256:abc', 'sha512:' + 'b'.repeat(128), 'md5:x', '', 'sha256:' + 'A'.repeat(64)),
    size: fc.oneof(fc.nat(), fc.constantFrom(-1, 1.5, 2 ** 53, Number.MAX_VALUE)),
    annotations: fc.dictionary(fc.string(), fc.string(), { maxKeys: 2 }),
    platform: fc.record({ os: fc.string(), architecture: fc.string() }),
  },
  { requiredKeys: [] },
);

export const manifestTarget: FuzzTarget = {
  name: 'manifest',
  contract:
    'any bytes → a parsed image manifest or index whose digest is the sha256 of exactly those bytes and whose descriptors are well formed, or InvalidInputError/TooLargeError; never another exception',
  sources: ['src/oci/'],
  dictionary: [
    '"schemaVersion":2',
    '"mediaType":"application/vnd.oci.image.index.v1+json"',
    '"mediaType":"application/vnd.oci.image.manifest.v1+json"',
    '"mediaType":"application/vnd.docker.distribution.manifest.v2+json"',
    '"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json"',
    '"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"',
    '"manifests":[',
    '"layers":[',
    '"config":{',
    '"subject":',
    `"digest":"${D}"`,
    '"size":',
    '"__proto__":',
    '{',
    '}',
    '[',
    ']',
    ',',
    'null',
    '1e400',
    '"\\u0000"',
    '"\\ud800"',
  ],
  generate: fc
    .record(
      {
        schemaVersion: fc.constantFrom(2, 1, '2', null),
        mediaType: fc.constantFrom(
          'application/vnd.oci.image.manifest.v1+json',
          'application/vnd.oci.image.index.v1+json',
          'application/vnd.docker.distribution.manifest.list.v2+json',
          'application/vnd.docker.distribution.manifest.v2+json',
          'text/plain',
        ),
        config: fc.oneof(descriptor, fc.constant(null)),
        layers: fc.oneof(fc.array(descriptor, { maxLength: 3 }), fc.constant({})),
        manifests: fc.oneof(fc.array(fc.oneof(descriptor, fc.constant(null), fc.constant([])), { maxLength: 3 }), fc.constant('x')),
        subject: descriptor,
      },
      { requiredKeys: [] },
    )
    .map((doc) => bytes(JSON.stringify(doc))),
  run(input) {
    const parsed = refusesWithSync([InvalidInputError, TooLargeError], () => parseManifest(input));
    if (!parsed) return;
    const sha = `sha256:${createHash('sha256').update(input).digest('hex')}`;
    assertContract(digestBytes(input) === sha, `digest of a parsed manifest is not sha256 of its bytes`);
    const descs = parsed.kind === 'index' ? parsed.index.manifests : [parsed.manifest.config, ...parsed.manifest.layers];
    for (const d of descs) {
      assertContract(typeof d.mediaType === 'string' && d.mediaType !== '', 'a descriptor without mediaType was accepted');
      assertContract(isDigest(d.digest), `descriptor digest ${String(d.digest)} accepted`);
      assertContract(Number.isSafeInteger(d.size) && d.size >= 0, `descriptor size ${d.size} accepted`);
    }
  },
};
