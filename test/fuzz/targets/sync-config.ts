import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { loadSyncConfig, type SyncRepoSpec } from '../../../src/copy/sync-config.js';
import { InvalidInputError } from '../../../src/util/errors.js';
import { assertContract, bytes, refusesWith, type FuzzTarget } from '../lib/target.js';

let dir = '';
const file = (): string => join(dir, 'sync.yaml');

/** One spec as a document of its own, in skopeo-sync's shape. */
function specYaml(s: SyncRepoSpec): string {
  const cfg: Record<string, unknown> = {};
  if (s.regex) cfg['images-by-tag-regex'] = { [s.repository]: s.regex.source };
  else if (s.semver !== undefined) cfg['images-by-semver'] = { [s.repository]: s.semver };
  else cfg.images = { [s.repository]: s.tags };
  if (s.credentials) cfg.credentials = s.credentials;
  if (s.tlsVerify !== undefined) cfg['tls-verify'] = s.tlsVerify;
  return stringify({ [s.registry]: cfg });
}

function same(a: SyncRepoSpec, b: SyncRepoSpec): boolean {
  return (
    a.registry === b.registry &&
    a.repository === b.repository &&
    JSON.stringify(a.tags) === JSON.stringify(b.tags) &&
    a.regex?.source === b.regex?.source &&
    a.semver === b.semver &&
    JSON.stringify(a.credentials) === JSON.stringify(b.credentials) &&
    a.tlsVerify === b.tlsVerify
  );
}

const repo = fc.constantFrom('busybox', 'a/b', 'library/x', 'UPPER', 'a:tag', 'a@sha256:' + '0'.repeat(64), '', '..', 'x'.repeat(300));
const registryCfg = fc.record(
  {
    images: fc.oneof(
      fc.dictionary(
        repo,
        fc.oneof(fc.array(fc.constantFrom('1', 'latest', 'sha256:' + 'a'.repeat(64))), fc.constant(null), fc.constant('x'), fc.constant([1])),
      ),
      fc.constant(['busybox']),
    ),
    'images-by-tag-regex': fc.dictionary(repo, fc.oneof(fc.constantFrom('^1\\.\\d+$', '(', '.*', '(a+)+$', '[', '\\'), fc.constant(3))),
    'images-by-semver': fc.dictionary(repo, fc.oneof(fc.constantFrom('>= 1.0.0', '^2', 'nope', '', '1.x || >=3'), fc.constant(null))),
    credentials: fc.oneof(fc.record({ username: fc.string(), password: fc.string() }), fc.constant({ username: 'u' }), fc.constant('u:p')),
    'tls-verify': fc.oneof(fc.boolean(), fc.constant('no')),
    'cert-dir': fc.constant('/c'),
    bogus: fc.constant(1),
  },
  { requiredKeys: [] },
);

export const syncConfigTarget: FuzzTarget = {
  name: 'sync-config',
  contract:
    'any bytes → sync specs, each of which serialised alone parses back to itself, or InvalidInputError naming the file; never another exception; ≤ 1 s + 50 ms/KiB (round trip included)',
  sources: ['src/copy/sync-config.ts', 'src/oci/reference.ts'],
  dictionary: [
    'images:\n',
    'images-by-tag-regex:\n',
    'images-by-semver:\n',
    'credentials:\n',
    'tls-verify: false\n',
    '  ',
    '- ',
    ': ',
    '&a ',
    '*a',
    '<<: *a',
    '!!binary ',
    '!!map',
    '{',
    '}',
    '[',
    ']',
    '"',
    "'",
    '|\n',
    '? ',
    '---\n',
    '...\n',
    '%YAML 1.2\n',
    'docker.io:\n',
    'busybox: []\n',
    '^1\\.\\d+$',
  ],
  generate: fc
    .dictionary(fc.constantFrom('docker.io', 'localhost:5000', 'q.io', 'bad host', ''), fc.oneof(registryCfg, fc.constant(null), fc.constant([1])), {
      maxKeys: 3,
    })
    .map((d) => bytes(stringify(d))),
  maxLength: 32 * 1024,
  // Each case writes a file and parses once per spec again (the round trip): the bound is loose.
  budget: { baseMs: 1000, perKiBMs: 50 },
  async setup() {
    dir = mkdtempSync(join(tmpdir(), 'stevedore-fuzz-sync-'));
  },
  async teardown() {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = '';
  },
  async run(input) {
    if (!dir) await this.setup!();
    writeFileSync(file(), input);
    const specs = await refusesWith(
      [InvalidInputError],
      () => loadSyncConfig(file()),
      (err) => {
        assertContract(err.message.includes(file()), `error does not name the file: ${err.message.slice(0, 200)}`);
      },
    );
    if (!specs) return;
    for (const s of specs) {
      writeFileSync(file(), specYaml(s));
      const again = await refusesWith([InvalidInputError], () => loadSyncConfig(file()));
      assertContract(
        again !== undefined && again.length === 1 && same(again[0]!, s),
        `spec ${s.registry}/${s.repository} does not round-trip: ${specYaml(s).slice(0, 200)}`,
      );
    }
  },
};
