import fc from 'fast-check';
import { ignoreFromLines } from '../../../src/build/context/ignore.js';
import { InvalidInputError } from '../../../src/util/errors.js';
import { assertContract, bytes, refusesWithSync, text, type FuzzTarget } from '../lib/target.js';

/** Paths each matcher is asked about: ordinary ones, and long deep ones that make backtracking show. */
const PATHS: Array<[string, boolean]> = [
  ['a', false],
  ['a/b/c.txt', false],
  ['node_modules/x/package.json', false],
  ['.git', true],
  ['src', true],
  [`${'a/'.repeat(40)}b`, false],
  [`${'ab/'.repeat(30)}${'c'.repeat(200)}`, false],
  ['x'.repeat(2000), false],
];

export const dockerignoreTarget: FuzzTarget = {
  name: 'dockerignore',
  contract:
    'any bytes → an ignore matcher answering every path, or an InvalidInputError naming ".dockerignore:<line>"; never another exception; parse and match 8 paths ≤ 250 ms + 100 ms/KiB',
  sources: ['src/build/context/'],
  dictionary: [
    '**',
    '**/',
    '*',
    '?',
    '[a-z]',
    '[^a]',
    '[!a]',
    '[',
    ']',
    '\\',
    '!',
    '#',
    '/',
    '../',
    './',
    '.',
    '\n',
    '\r\n',
    ' ',
    '\uFEFF',
    '*.md',
    'node_modules',
  ],
  generate: fc
    .array(
      fc.array(fc.constantFrom('**', '*', '?', 'a', 'b', '/', '[a-c]', '\\*', '!', '.', '..'), { maxLength: 12 }).map((p) => p.join('')),
      { maxLength: 8 },
    )
    .map((lines) => bytes(lines.join('\n'))),
  // Every pattern is tried on 8 paths and each of their parents (41 for the deepest): a KiB of
  // patterns costs more than a KiB of most formats.
  budget: { perKiBMs: 100 },
  run(input) {
    const lines = text(input).split(/\r?\n/);
    const m = refusesWithSync(
      [InvalidInputError],
      () => ignoreFromLines(lines, '.dockerignore'),
      (err) => {
        assertContract(/^\.dockerignore:\d+: /.test(err.message), `error without file:line: ${err.message}`);
      },
    );
    if (!m) return;
    for (const [p, dir] of PATHS) {
      const r = m.ignored(p, dir);
      assertContract(typeof r === 'boolean', 'ignored() did not answer a boolean');
    }
  },
};
