import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { familiarName, formatReference, parseReference } from '../../../src/oci/reference.js';
import { InvalidInputError } from '../../../src/util/errors.js';
import { assertContract, bytes, refusesWithSync, text, type FuzzTarget } from '../lib/target.js';

const lower = fc.stringMatching(/^[a-z0-9]{1,8}$/);
const component = fc
  .tuple(lower, fc.array(fc.tuple(fc.constantFrom('.', '_', '__', '-', '---'), lower), { maxLength: 2 }))
  .map(([h, t]) => h + t.map(([s, w]) => s + w).join(''));
const host = fc.oneof(
  fc.constantFrom('localhost', 'docker.io', 'index.docker.io', 'registry-1.docker.io', 'quay.io', '[::1]', 'Example.COM', '127.0.0.1'),
  fc.tuple(fc.stringMatching(/^[a-zA-Z0-9]([a-zA-Z0-9-]{0,5}[a-zA-Z0-9])?$/), fc.stringMatching(/^[a-z]{2,4}$/)).map(([a, b]) => `${a}.${b}`),
);
const port = fc.option(fc.constantFrom(':5000', ':1', ':65535', ':0', ':65536', ':'), { nil: '' });
const tag = fc.option(
  fc.stringMatching(/^[\w][\w.-]{0,20}$/).map((t) => `:${t}`),
  { nil: '' },
);
const digest = fc.option(fc.constantFrom(`@sha256:${'0'.repeat(64)}`, `@sha512:${'f'.repeat(128)}`, '@sha256:abc', '@', `@sha256:${'A'.repeat(64)}`), {
  nil: '',
});

export const referenceTarget: FuzzTarget = {
  name: 'reference',
  contract: 'any string → a reference r with parse(format(r)) = r and parse(familiar(r)) = r, or InvalidInputError; never another exception',
  sources: ['src/oci/reference.ts', 'src/oci/digest.ts'],
  dictionary: [
    '/',
    ':',
    '@',
    'sha256:',
    `sha256:${'a'.repeat(64)}`,
    'localhost',
    'docker.io/',
    'library/',
    'index.docker.io',
    '[::1]',
    ':5000',
    '__',
    '-',
    '.',
    'latest',
    ' ',
    'A',
  ],
  generate: fc
    .tuple(
      fc.option(
        fc.tuple(host, port).map(([h, p]) => `${h}${p}/`),
        { nil: '' },
      ),
      fc.array(component, { minLength: 1, maxLength: 3 }),
      tag,
      digest,
    )
    .map(([h, path, t, d]) => bytes(`${h}${path.join('/')}${t}${d}`)),
  maxLength: 1024,
  run(input) {
    const s = text(input);
    const ref = refusesWithSync([InvalidInputError], () => parseReference(s));
    if (!ref) return;
    const formatted = formatReference(ref);
    const again = refusesWithSync([InvalidInputError], () => parseReference(formatted));
    assertContract(again !== undefined, `format(parse(${JSON.stringify(s)})) = ${JSON.stringify(formatted)} does not parse`);
    assertContract(isDeepStrictEqual(again, ref), `parse(format(r)) != r for ${JSON.stringify(s)}: ${JSON.stringify(ref)} vs ${JSON.stringify(again)}`);
    const familiar = familiarName(ref);
    const fromFamiliar = refusesWithSync([InvalidInputError], () => parseReference(familiar));
    assertContract(isDeepStrictEqual(fromFamiliar, ref), `parse(familiar(r)) != r for ${JSON.stringify(s)} (familiar ${JSON.stringify(familiar)})`);
  },
};
