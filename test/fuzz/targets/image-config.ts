import fc from 'fast-check';
import { parseConfig } from '../../../src/oci/config.js';
import { InvalidInputError, TooLargeError } from '../../../src/util/errors.js';
import { assertContract, bytes, refusesWithSync, type FuzzTarget } from '../lib/target.js';

export const imageConfigTarget: FuzzTarget = {
  name: 'image-config',
  contract: 'any bytes → an image config with os, architecture and rootfs.diff_ids, or InvalidInputError/TooLargeError; never another exception',
  sources: ['src/oci/config.ts'],
  dictionary: [
    '"architecture":"amd64"',
    '"os":"linux"',
    '"rootfs":{"type":"layers","diff_ids":[]}',
    '"config":{',
    '"Env":["A=B"]',
    '"history":[',
    '{',
    '}',
    '[',
    ']',
    'null',
    ',',
  ],
  generate: fc
    .record(
      {
        architecture: fc.oneof(fc.string(), fc.constant(1)),
        os: fc.oneof(fc.constant('linux'), fc.constant(null)),
        rootfs: fc.oneof(
          fc.record({ type: fc.constantFrom('layers', 'x'), diff_ids: fc.oneof(fc.array(fc.string()), fc.constant(null)) }),
          fc.constant(null),
          fc.constant('layers'),
        ),
        config: fc.object(),
      },
      { requiredKeys: [] },
    )
    .map((d) => bytes(JSON.stringify(d))),
  run(input) {
    const c = refusesWithSync([InvalidInputError, TooLargeError], () => parseConfig(input));
    if (!c) return;
    assertContract(
      typeof c.os === 'string' && typeof c.architecture === 'string' && Array.isArray(c.rootfs.diff_ids),
      'accepted a config without os/architecture/diff_ids',
    );
  },
};
