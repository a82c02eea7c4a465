import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { bundleSignedBy, parseBundle, parseStatement } from '../../../src/sign/bundle.js';
import { SignatureError } from '../../../src/sign/errors.js';
import { assertContract, bytes, refusesWithSync, type FuzzTarget } from '../lib/target.js';

const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
const b64 = (s: string) => Buffer.from(s).toString('base64');
const statement = fc
  .record(
    {
      _type: fc.constantFrom('https://in-toto.io/Statement/v1', 'x', 1),
      predicateType: fc.constantFrom('https://sigstore.dev/cosign/sign/v1', 2),
      subject: fc.oneof(
        fc.array(
          fc.oneof(
            fc.record({
              name: fc.string(),
              digest: fc.oneof(
                fc.dictionary(fc.constantFrom('sha256', 'sha512', '__proto__'), fc.oneof(fc.stringMatching(/^[0-9a-f]{0,64}$/), fc.constant(1))),
                fc.constant(null),
              ),
            }),
            fc.constant(null),
          ),
        ),
        fc.constant({}),
      ),
      predicate: fc.jsonValue(),
    },
    { requiredKeys: [] },
  )
  .map((s) => JSON.stringify(s));

export const sigstoreBundleTarget: FuzzTarget = {
  name: 'sigstore-bundle',
  contract: 'any bytes → a parsed bundle (its statement parsed, its signatures checked) or SignatureError; never another exception',
  sources: ['src/sign/bundle.ts', 'src/sign/crypto.ts'],
  dictionary: [
    '"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"',
    '"dsseEnvelope":{',
    '"payload":"',
    '"payloadType":"application/vnd.in-toto+json"',
    '"signatures":[{"sig":"MEUC"}]',
    '"verificationMaterial":{',
    '"publicKey":{"hint":"h"}',
    '"certificate":{"rawBytes":"MII"}',
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
        mediaType: fc.constantFrom('application/vnd.dev.sigstore.bundle.v0.3+json', 'application/vnd.dev.sigstore.bundle+json;version=0.2', 'x'),
        dsseEnvelope: fc.oneof(
          fc.record(
            {
              payload: fc.oneof(statement.map(b64), fc.string(), fc.constant(1)),
              payloadType: fc.constantFrom('application/vnd.in-toto+json', 'text/plain'),
              signatures: fc.oneof(fc.array(fc.oneof(fc.record({ sig: fc.oneof(fc.base64String(), fc.constant(1)) }), fc.constant(null))), fc.constant('x')),
            },
            { requiredKeys: [] },
          ),
          fc.constant(null),
        ),
        verificationMaterial: fc.record(
          {
            publicKey: fc.record({ hint: fc.oneof(fc.string(), fc.constant(1)) }),
            certificate: fc.record({ rawBytes: fc.oneof(fc.base64String(), fc.constant([])) }),
          },
          { requiredKeys: [] },
        ),
      },
      { requiredKeys: [] },
    )
    .map((d) => bytes(JSON.stringify(d))),
  run(input) {
    const b = refusesWithSync([SignatureError], () => parseBundle(input));
    if (!b) return;
    assertContract(Buffer.isBuffer(b.payload) && b.signatures.every((s) => Buffer.isBuffer(s)), 'bundle fields are not bytes');
    refusesWithSync([SignatureError], () => parseStatement(b.payloadType, b.payload));
    assertContract(bundleSignedBy(b, key) === false, 'a fuzzed bundle verified with a key nobody signed with');
  },
};
