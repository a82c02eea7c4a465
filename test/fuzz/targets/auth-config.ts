import fc from 'fast-check';
import { lookupCredentials, parseDockerConfig } from '../../../src/registry/credentials.js';
import { InvalidInputError } from '../../../src/util/errors.js';
import { assertContract, bytes, ContractViolation, refusesWithSync, text, type FuzzTarget } from '../lib/target.js';

const GRAM = 10;

/** Words of our own messages: a gram from them is not the input being quoted. */
const OWN = [
  'auth.json',
  'not valid JSON',
  'not a JSON object',
  'is not base64 of user:password',
  'the "auth" entry for',
  'is not an object',
  'must be a string',
  ...['auth', 'username', 'password'].map((f) => `the "${f}" of the entry for`),
];

/** Keys of a JSON document (registry names, which messages may name), when it is one. */
function keysOf(doc: unknown, out: Set<string> = new Set()): Set<string> {
  if (typeof doc === 'object' && doc !== null) {
    for (const [k, v] of Object.entries(doc)) {
      out.add(k);
      keysOf(v, out);
    }
  }
  return out;
}

/** Throws when `message` repeats a run of GRAM characters of the input (other than names and our own words). */
function checkNotQuoted(message: string, input: string): void {
  const grams = new Set<string>();
  for (let i = 0; i + GRAM <= message.length; i++) grams.add(message.slice(i, i + GRAM));
  if (grams.size === 0) return;
  let doc: unknown;
  try {
    doc = JSON.parse(input);
  } catch {
    doc = undefined;
  }
  // Keys are host names, never secrets; messages may name them as JSON strings (auths["host"]).
  const allowed = [...OWN, ...[...keysOf(doc)].flatMap((k) => [k, JSON.stringify(k)])];
  for (let i = 0; i + GRAM <= input.length; i++) {
    const g = input.slice(i, i + GRAM);
    if (grams.has(g) && !allowed.some((a) => a.includes(g)))
      throw new ContractViolation(`error message quotes the input (${JSON.stringify(g)}): ${message.slice(0, 300)}`);
  }
}

const secret = fc.stringMatching(/^[A-Za-z0-9+/=:]{0,24}$/);
const entry = fc.oneof(
  fc.record(
    {
      auth: fc.oneof(
        secret,
        secret.map((s) => Buffer.from(s).toString('base64')),
        fc.constant(7),
        fc.constant(null),
      ),
    },
    { requiredKeys: [] },
  ),
  fc.record({ username: fc.oneof(fc.string(), fc.constant(1)), password: fc.oneof(secret, fc.constant(false)), identitytoken: secret }, { requiredKeys: [] }),
  fc.constantFrom(null, 'user:pass', 3, []),
);

export const authConfigTarget: FuzzTarget = {
  name: 'auth-config',
  contract:
    'any bytes → a docker config whose lookups yield string credentials or nothing, or InvalidInputError that never quotes the input; never another exception',
  sources: ['src/registry/credentials.ts'],
  dictionary: [
    '"auths":{',
    '"docker.io":{',
    '"https://index.docker.io/v1/":',
    '"localhost:5000/ns":',
    '"auth":"dTpw"',
    '"auth":',
    '"username":"u"',
    '"password":"p"',
    '"identitytoken":"t"',
    '"credHelpers":{}',
    '{',
    '}',
    'null',
    '7',
    '"',
    ',',
  ],
  generate: fc
    .oneof(
      fc.record({
        auths: fc.dictionary(fc.constantFrom('docker.io', 'https://index.docker.io/v1/', 'localhost:5000', 'q.io/ns', 'q.io/ns/repo'), entry, { maxKeys: 3 }),
      }),
      fc.dictionary(fc.constantFrom('docker.io', 'q.io'), entry, { maxKeys: 2 }),
    )
    .map((d) => bytes(JSON.stringify(d))),
  maxLength: 16 * 1024,
  run(input) {
    const s = text(input);
    const check = (err: Error) => checkNotQuoted(err.message, s);
    const config = refusesWithSync([InvalidInputError], () => parseDockerConfig(s, 'auth.json'), check);
    if (!config) return;
    const registries = new Set(['docker.io', 'localhost:5000', 'q.io', ...Object.keys(config.auths ?? {})]);
    for (const r of registries) {
      for (const repo of [undefined, 'ns', 'ns/repo']) {
        const creds = refusesWithSync([InvalidInputError], () => lookupCredentials(config, r, repo, 'auth.json'), check);
        if (creds) assertContract(typeof creds.username === 'string' && typeof creds.password === 'string', `credentials for ${r} are not strings`);
      }
    }
  },
};
