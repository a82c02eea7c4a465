import fc from 'fast-check';
import { parseChallenges } from '../../../src/registry/auth.js';
import { assertContract, bytes, text, type FuzzTarget } from '../lib/target.js';

const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

export const wwwAuthenticateTarget: FuzzTarget = {
  name: 'www-authenticate',
  contract: 'any header value (one or several) → challenges with lower-case token schemes and string params; never throws; ≤ 250 ms + 20 ms/KiB',
  sources: ['src/registry/auth.ts'],
  dictionary: [
    'Bearer ',
    'Basic ',
    'realm=',
    'service=',
    'scope=',
    '"',
    '\\"',
    '\\',
    ',',
    ' ',
    '=',
    'error="insufficient_scope"',
    'repository:a/b:pull,push',
    'https://auth.example/token',
  ],
  generate: fc
    .array(
      fc.tuple(
        fc.constantFrom('Bearer', 'Basic', 'bearer', 'Negotiate', ''),
        fc.array(
          fc.tuple(
            fc.constantFrom('realm', 'service', 'scope', 'error', 'x'),
            fc.oneof(
              fc.string().map((v) => JSON.stringify(v)),
              fc.string(),
            ),
          ),
          { maxLength: 4 },
        ),
      ),
      { maxLength: 3 },
    )
    .map((cs) => bytes(cs.map(([s, ps]) => `${s} ${ps.map(([k, v]) => `${k}=${v}`).join(',')}`).join(', '))),
  maxLength: 16 * 1024,
  run(input) {
    const s = text(input);
    // Several header lines arrive as an array; split on a NUL to exercise that form too.
    const header = s.includes('\0') ? s.split('\0') : s;
    const challenges = parseChallenges(header);
    for (const c of challenges) {
      assertContract(TOKEN.test(c.scheme), `scheme ${JSON.stringify(c.scheme)} is not a lower-case token`);
      for (const [k, v] of Object.entries(c.params)) {
        assertContract(TOKEN.test(k) && typeof v === 'string', `param ${JSON.stringify(k)}=${JSON.stringify(v)}`);
      }
    }
  },
};
