import fc from 'fast-check';
import { loadSigningKey, loadVerifyKey } from '../../../src/attest/keys.js';
import { KeyError } from '../../../src/sign/errors.js';
import { encodePem } from '../../../src/sign/pem.js';
import { InvalidInputError } from '../../../src/util/errors.js';
import { bytes, ContractViolation, refusesWith, text, type FuzzTarget } from '../lib/target.js';

const PASSWORD = 'fuzz';
const TYPES = [
  'ENCRYPTED SIGSTORE PRIVATE KEY',
  'ENCRYPTED COSIGN PRIVATE KEY',
  'PRIVATE KEY',
  'EC PRIVATE KEY',
  'RSA PRIVATE KEY',
  'ENCRYPTED PRIVATE KEY',
  'PUBLIC KEY',
  'CERTIFICATE',
  'X',
];

/** The encrypted-key JSON body with its fields varied (types included: a number where a string goes). */
const encryptedBody = fc
  .record(
    {
      kdf: fc.oneof(
        fc.record(
          {
            name: fc.constantFrom('scrypt', 'pbkdf2', 1),
            params: fc.oneof(fc.constantFrom({ N: 32768, r: 8, p: 1 }, { N: 65536, r: 8, p: 1 }, { N: 1, r: 1, p: 1 }), fc.constant(null)),
            salt: fc.oneof(fc.base64String(), fc.constant(5), fc.constant(null)),
          },
          { requiredKeys: [] },
        ),
        fc.constant('scrypt'),
      ),
      cipher: fc.oneof(
        fc.record(
          {
            name: fc.constantFrom('nacl/secretbox', 'aes'),
            nonce: fc.oneof(fc.base64String(), fc.constant(Buffer.alloc(24).toString('base64')), fc.constant({})),
          },
          { requiredKeys: [] },
        ),
        fc.constant(null),
      ),
      ciphertext: fc.oneof(fc.base64String(), fc.constant([1])),
    },
    { requiredKeys: [] },
  )
  .map((d) => Buffer.from(JSON.stringify(d)));

export const cosignKeyTarget: FuzzTarget = {
  name: 'cosign-key',
  contract: 'any PEM text → a signing/verification key or KeyError/InvalidInputError (never another exception; the password never appears in a message)',
  sources: ['src/sign/keys.ts', 'src/sign/pem.ts', 'src/sign/encrypted-key.ts', 'src/attest/keys.ts'],
  dictionary: [
    ...TYPES.map((t) => `-----BEGIN ${t}-----\n`),
    ...TYPES.map((t) => `-----END ${t}-----\n`),
    'Proc-Type: 4,ENCRYPTED\n',
    'MHcCAQEE',
    'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE',
    'eyJrZGYiOnsibmFtZSI6InNjcnlwdCI',
    '=',
    '\n',
    '\r\n',
  ],
  generate: fc
    .tuple(
      fc.constantFrom(...TYPES),
      fc.oneof(
        encryptedBody,
        fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
      ),
    )
    .map(([type, body]) => bytes(encodePem(type, body))),
  maxLength: 16 * 1024,
  // A well-formed encrypted key costs one scrypt, by design: N=2^17 (cosign's strongest allowed
  // parameters, 128 MiB) took up to 2.3 s on this loaded 2-core machine.
  budget: { baseMs: 5000 },
  async run(input) {
    // Both loaders take a PEM text or a file path: a text without a PEM marker would be read as a path.
    const s = text(input);
    const pem = s.includes('-----BEGIN ') ? s : `-----BEGIN PUBLIC KEY-----\n${s}\n-----END PUBLIC KEY-----\n`;
    const check = (err: Error) => {
      if (err.message.includes(PASSWORD)) throw new ContractViolation(`a key error quotes the password: ${err.message}`);
    };
    const allowed = [KeyError, InvalidInputError];
    // The attest loaders read through loadPrivateKey/loadPublicKey and add the curve check; an
    // encrypted key costs one scrypt per load, so each loader runs once.
    await refusesWith(allowed, () => loadSigningKey(pem, PASSWORD), check);
    await refusesWith(allowed, () => loadVerifyKey(pem), check);
  },
};
