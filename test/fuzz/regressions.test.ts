import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { ContainerfileError, MAX_CONTAINERFILE_BYTES, parseContainerfile } from '../../src/build/containerfile/index.js';
import { ignoreFromLines } from '../../src/build/context/ignore.js';
import { loadSyncConfig, MAX_SYNC_CONFIG_BYTES } from '../../src/copy/sync-config.js';
import { familiarName, formatReference, parseReference } from '../../src/oci/reference.js';
import { InvalidPolicyError, MAX_POLICY_BYTES, parsePolicy } from '../../src/policy/parse.js';
import { lookupCredentials, MAX_AUTH_FILE_BYTES, parseDockerConfig } from '../../src/registry/credentials.js';
import { GoBuildInfoScanner, goPackages } from '../../src/sbom/catalogers/golang.js';
import { parseNpmLockfile } from '../../src/sbom/catalogers/npm.js';
import { walkLayer } from '../../src/sbom/layer-walk.js';
import { UnsafeLayerEntryError, unpackLayer } from '../../src/runtime/unpack/index.js';
import { InvalidInputError } from '../../src/util/errors.js';
import { loadPrivateKey } from '../../src/sign/keys.js';
import { KeyError } from '../../src/sign/errors.js';
import { CORPUS_ROOT } from './lib/corpus.js';

/**
 * One test per defect the fuzz targets found (their inputs are the `regress-*` files of
 * test/fuzz/corpus/<target>/), plus the size caps, each failing without its fix.
 */
const corpus = (target: string, name: string): string => readFileSync(join(CORPUS_ROOT, target, name), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'stevedore-fuzz-regress-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('.dockerignore patterns (fuzz target dockerignore)', () => {
  it.each(['regress-star-backtracking', 'regress-doublestar-backtracking'])(
    '%s: matching a long path takes linear time, not seconds of backtracking',
    (name) => {
      const m = ignoreFromLines(corpus('dockerignore', name).split('\n'), '.dockerignore');
      // CPU time of this process, not wall time: other suites load the machine.
      const start = process.cpuUsage();
      // Sized so the backtracking RegExp took seconds (O(n^3) and O(n^4)); RE2 takes about a millisecond.
      for (const p of ['x'.repeat(1500), 'a'.repeat(400), `${'a/'.repeat(300)}c`]) m.ignored(p, false);
      const used = process.cpuUsage(start);
      expect((used.user + used.system) / 1000).toBeLessThan(500);
    },
  );

  it('still matches what the patterns say', () => {
    const m = ignoreFromLines(['a**a**b', '*****..'], '.dockerignore');
    expect(m.ignored('aXaYb', false)).toBe(true);
    expect(m.ignored('a/x/a/y/b', false)).toBe(true);
    expect(m.ignored('abc', false)).toBe(false);
    expect(m.ignored('x..', false)).toBe(true);
  });

  it('a reversed class range ([z-a]) is an InvalidInputError naming file:line, not a SyntaxError', () => {
    const err = (() => {
      try {
        ignoreFromLines(['ok', corpus('dockerignore', 'regress-reversed-class').trim()], '.dockerignore');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(InvalidInputError);
    expect((err as Error).message).toMatch(/^\.dockerignore:2: /);
  });
});

describe('auth.json / .dockerconfigjson (fuzz target auth-config)', () => {
  it('an "auth" that is not a string is an InvalidInputError, not a TypeError from Buffer.from', () => {
    const config = parseDockerConfig(corpus('auth-config', 'regress-auth-number'), 'auth.json');
    expect(() => lookupCredentials(config, 'docker.io', undefined, 'auth.json')).toThrow(InvalidInputError);
  });

  it('a username that is not a string is refused rather than returned as credentials', () => {
    const config = parseDockerConfig(corpus('auth-config', 'regress-username-number'), 'auth.json');
    const err = (() => {
      try {
        return lookupCredentials(config, 'localhost:5000', undefined, 'auth.json');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(InvalidInputError);
    expect((err as Error).message).not.toContain('hunter2');
  });

  it('a syntax error names where, never quotes the text around it (which may be a password)', () => {
    const text = corpus('auth-config', 'regress-syntax-error-quotes-secret');
    const err = (() => {
      try {
        parseDockerConfig(text, 'auth.json');
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err!.message).not.toContain('c2VjcmV0');
    expect(err!.message).toMatch(/^auth\.json: not valid JSON \(syntax error/);
  });
});

describe('image references (fuzz target reference)', () => {
  it.each(['regress-familiar-dotted-namespace', 'regress-familiar-nested-library'])('%s: the familiar name reads back as the same reference', (name) => {
    const ref = parseReference(corpus('reference', name));
    expect(parseReference(familiarName(ref))).toEqual(ref);
    expect(parseReference(formatReference(ref))).toEqual(ref);
  });

  it('familiar names stay short where that is unambiguous', () => {
    expect(familiarName(parseReference('busybox:1'))).toBe('busybox:1');
    expect(familiarName(parseReference('user/app'))).toBe('user/app');
    expect(familiarName(parseReference('docker.io/a.b/c'))).toBe('docker.io/a.b/c');
    expect(familiarName(parseReference('library/a/b'))).toBe('library/a/b');
  });
});

describe('sync YAML (fuzz target sync-config)', () => {
  it('a malformed repository name is refused naming the file', async () => {
    const f = join(dir, 'bad-repo.yaml');
    writeFileSync(f, corpus('sync-config', 'regress-bad-repository-names-file'));
    await expect(loadSyncConfig(f)).rejects.toThrow(new RegExp(`^${f}: docker\\.io: invalid reference`));
  });

  it('an empty credentials: key means no credentials, not null ones', async () => {
    const f = join(dir, 'null-creds.yaml');
    writeFileSync(f, corpus('sync-config', 'regress-null-credentials'));
    const specs = await loadSyncConfig(f);
    expect(specs.length).toBe(2);
    for (const s of specs) expect(s.credentials).toBeUndefined();
  });
});

describe('SBOM catalogers (fuzz targets npm-package, go-buildinfo)', () => {
  it('a lockfile package with an empty version is not a package', () => {
    expect(parseNpmLockfile(corpus('npm-package', 'regress-empty-version'))).toEqual([]);
  });

  it('a v1 lockfile nested 100,000 deep is read without overflowing the stack, in depth-first order', () => {
    const n = 100_000;
    const deep = `{"lockfileVersion":1,"dependencies":${'{"a":{"version":"1","dependencies":'.repeat(n)}{}${'}}'.repeat(n)}}`;
    expect(parseNpmLockfile(deep).length).toBe(n);
    const v1 = JSON.stringify({ lockfileVersion: 1, dependencies: { a: { version: '1', dependencies: { b: { version: '2' } } }, c: { version: '3' } } });
    expect(parseNpmLockfile(v1).map((p) => p.name)).toEqual(['a', 'b', 'c']);
  });

  it('a dep line with empty columns yields no package with an empty name', () => {
    const s = new GoBuildInfoScanner();
    s.push(readFileSync(join(CORPUS_ROOT, 'go-buildinfo', 'regress-empty-dep-columns')));
    const info = s.finish();
    expect(info).toBeDefined();
    expect(goPackages(info!).filter((p) => p.name === '' || p.version === '')).toEqual([]);
  });
});

describe('layer tars (fuzz target tar-unpack)', () => {
  it('a directory whose PAX size record announces data is refused, not awaited forever', async () => {
    const root = mkdtempSync(join(dir, 'root-'));
    const layer = Readable.from([readFileSync(join(CORPUS_ROOT, 'tar-unpack', 'regress-directory-pax-size'))]);
    // Before the fix the promise never settled (node exited with "unsettled top-level await").
    const settled = await Promise.race([
      unpackLayer(root, layer).then(
        () => 'resolved',
        (e: unknown) => e,
      ),
      new Promise((resolve) => setTimeout(() => resolve('still pending after 10 s'), 10_000).unref()),
    ]);
    expect(settled).toBeInstanceOf(UnsafeLayerEntryError);
    expect((settled as Error).message).toMatch(/directory entry announcing 4294967295 bytes/);
  });
});

describe('SBOM layer walk (same tar input as tar-unpack)', () => {
  it('a directory announcing data ends the walk with an error instead of waiting forever', async () => {
    const layer = Readable.from([readFileSync(join(CORPUS_ROOT, 'tar-unpack', 'regress-directory-pax-size'))]);
    const settled = await Promise.race([
      walkLayer(layer, 'application/vnd.oci.image.layer.v1.tar', async () => {}).then(
        () => 'resolved',
        (e: unknown) => e,
      ),
      new Promise((resolve) => setTimeout(() => resolve('still pending after 10 s'), 10_000).unref()),
    ]);
    expect(settled).toBeInstanceOf(UnsafeLayerEntryError);
  });
});

describe('encrypted cosign keys (fuzz target cosign-key)', () => {
  // Found by the 600-second run: a byte field that is JSON but not a string reached Buffer.from,
  // whose TypeError escaped instead of a KeyError naming the field.
  it.each([
    ['regress-salt-number', /kdf\.salt must be base64 text, not number/],
    ['regress-field-object', /cipher\.nonce must be base64 text, not object/],
  ])('%s: a KeyError naming the field, not a TypeError', async (name, message) => {
    const err = await loadPrivateKey(corpus('cosign-key', name), 'a-password').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeyError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain('a-password');
  });
});

describe('size caps: refused before parsing', () => {
  const big = (n: number) => `# ${'x'.repeat(n)}\n`;
  it(`a Containerfile over ${MAX_CONTAINERFILE_BYTES} bytes`, () => {
    expect(() => parseContainerfile(`${big(MAX_CONTAINERFILE_BYTES)}FROM scratch\n`)).toThrow(ContainerfileError);
    expect(() => parseContainerfile(`${big(MAX_CONTAINERFILE_BYTES)}FROM scratch\n`)).toThrow(/exceed the 1048576-byte limit/);
  });
  it(`a policy over ${MAX_POLICY_BYTES} bytes`, () => {
    const text = JSON.stringify({ default: [{ type: 'reject' }], pad: 'x'.repeat(MAX_POLICY_BYTES) });
    expect(() => parsePolicy(text)).toThrow(InvalidPolicyError);
    expect(() => parsePolicy(text)).toThrow(/exceed the 1048576-byte limit/);
  });
  it(`a sync config over ${MAX_SYNC_CONFIG_BYTES} bytes`, async () => {
    const f = join(dir, 'big.yaml');
    writeFileSync(f, big(MAX_SYNC_CONFIG_BYTES));
    await expect(loadSyncConfig(f)).rejects.toThrow(/exceed the 1048576-byte limit/);
  });
  it(`an auth file over ${MAX_AUTH_FILE_BYTES} bytes`, () => {
    expect(() => parseDockerConfig(JSON.stringify({ auths: {}, pad: 'x'.repeat(MAX_AUTH_FILE_BYTES) }))).toThrow(/exceed the 1048576-byte limit/);
  });
});
