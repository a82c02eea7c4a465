/**
 * Credentials from docker `config.json`, containers `auth.json`, Kubernetes `.dockerconfigjson`
 * and legacy `.dockercfg` documents: parsing, key normalisation and lookup order. No registry.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findCredentials, lookupCredentials, normaliseAuthKey, parseDockerConfig, readAuthFile, storeCredentials } from '../../src/registry/credentials.js';
import { InvalidInputError } from '../../src/util/errors.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';

const temps = new TempDirs();
afterAll(() => temps.cleanup());

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('normaliseAuthKey', () => {
  it.each([
    ['https://index.docker.io/v1/', 'docker.io'],
    ['index.docker.io', 'docker.io'],
    ['registry-1.docker.io', 'docker.io'],
    ['https://registry-1.docker.io/v2/', 'docker.io'],
    ['docker.io', 'docker.io'],
    ['http://127.0.0.1:5000', '127.0.0.1:5000'],
    ['https://quay.io/v2/', 'quay.io'],
    ['quay.io/team/', 'quay.io/team'],
    [' registry.example.com ', 'registry.example.com'],
  ])('%s → %s', (key, want) => {
    expect(normaliseAuthKey(key)).toBe(want);
  });
});

describe('parseDockerConfig and lookupCredentials', () => {
  it('reads a Kubernetes .dockerconfigjson body (decoded from the Secret) with auth or username/password', () => {
    const secretData = b64(
      JSON.stringify({
        auths: {
          'registry.example.com': { username: 'robot', password: 'p:w', auth: b64('robot:p:w') },
          'ghcr.io': { auth: b64('octo:ghp_token') },
        },
      }),
    );
    const config = parseDockerConfig(Buffer.from(secretData, 'base64').toString('utf8'), 'secret default/pull');
    expect(lookupCredentials(config, 'registry.example.com', 'team/app')).toEqual({ username: 'robot', password: 'p:w' });
    // A colon in the password survives: only the first colon splits user from password.
    expect(lookupCredentials(config, 'ghcr.io', 'octo/app')).toEqual({ username: 'octo', password: 'ghp_token' });
    expect(lookupCredentials(config, 'quay.io', 'x/y')).toBeUndefined();
  });

  it('reads the legacy .dockercfg form, hosts at top level, with the Hub URL key normalised', () => {
    const legacy = JSON.stringify({
      'https://index.docker.io/v1/': { auth: b64('hubuser:hubpass'), email: 'me@example.com' },
      'registry.example.com:5000': { auth: b64('u:p'), email: 'me@example.com' },
    });
    const config = parseDockerConfig(legacy);
    expect(Object.keys(config.auths ?? {})).toHaveLength(2);
    expect(lookupCredentials(config, 'docker.io', 'library/busybox')).toEqual({ username: 'hubuser', password: 'hubpass' });
    expect(lookupCredentials(config, 'registry.example.com:5000', 'a')).toEqual({ username: 'u', password: 'p' });
  });

  it('maps the modern Hub key https://index.docker.io/v1/ to docker.io', () => {
    const config = parseDockerConfig(JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: b64('a:b') } }, credsStore: 'desktop' }));
    expect(lookupCredentials(config, 'docker.io', 'library/busybox')).toEqual({ username: 'a', password: 'b' });
    expect(lookupCredentials(config, 'docker.io')).toEqual({ username: 'a', password: 'b' });
  });

  it('prefers the most specific key: host/ns/repo, then host/ns, then host', () => {
    const config = parseDockerConfig(
      JSON.stringify({
        auths: {
          'reg.example.com': { auth: b64('host:1') },
          'reg.example.com/team': { auth: b64('team:2') },
          'reg.example.com/team/app': { auth: b64('app:3') },
        },
      }),
    );
    expect(lookupCredentials(config, 'reg.example.com', 'team/app')?.username).toBe('app');
    expect(lookupCredentials(config, 'reg.example.com', 'team/other')?.username).toBe('team');
    expect(lookupCredentials(config, 'reg.example.com', 'elsewhere/x')?.username).toBe('host');
    // A namespace prefix match is by path component, never by string prefix.
    expect(lookupCredentials(config, 'reg.example.com', 'teamster/x')?.username).toBe('host');
  });

  it('an entry with only an identity token or nothing usable gives no credentials', () => {
    const config = parseDockerConfig(JSON.stringify({ auths: { 'reg.example.com': { identitytoken: 'xyz' }, 'other.example.com': {} } }));
    expect(lookupCredentials(config, 'reg.example.com', 'a')).toBeUndefined();
    expect(lookupCredentials(config, 'other.example.com', 'a')).toBeUndefined();
    expect(lookupCredentials(parseDockerConfig('{}'), 'reg.example.com')).toBeUndefined();
  });

  it('rejects documents that are not JSON objects, and auth that is not user:password', () => {
    expect(() => parseDockerConfig('{nope', 'my.json')).toThrow(InvalidInputError);
    expect(() => parseDockerConfig('{nope', 'my.json')).toThrow(/my\.json: not valid JSON/);
    expect(() => parseDockerConfig('[]')).toThrow(/not a JSON object/);
    expect(() => parseDockerConfig('null')).toThrow(/not a JSON object/);
    const bad = parseDockerConfig(JSON.stringify({ auths: { 'reg.example.com': { auth: b64('no-colon') } } }));
    expect(() => lookupCredentials(bad, 'reg.example.com', 'a', 'auth.json')).toThrow(
      /auth\.json: auths\["reg\.example\.com"\]\.auth is not base64 of user:password/,
    );
  });

  it('never quotes the text in its errors: they name the source and the JSON path (issue 17)', () => {
    const secret = 'Hunter2-Sup3rSecret';
    const message = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return (err as Error).message;
      }
      throw new Error('expected an error');
    };
    // V8's own JSON.parse message quotes the text around the fault.
    const broken = `{"auths": {"reg": {"username": "u", "password": "${secret}" oops}}}`;
    expect(() => JSON.parse(secret)).toThrow(secret.slice(0, 6));
    const cases: Array<[() => unknown, RegExp]> = [
      [
        () => parseDockerConfig(broken, 'Secret ns/pull'),
        /^Secret ns\/pull: not valid JSON \((syntax error( at (line \d+ column \d+|offset \d+))?|unexpected end of input)\)$/,
      ],
      [() => parseDockerConfig(secret, 'f'), /^f: not valid JSON/],
      [() => parseDockerConfig(JSON.stringify({ auths: [secret] }), 'f'), /^f: "auths" is not a JSON object$/],
      [
        () => lookupCredentials(parseDockerConfig(JSON.stringify({ auths: { reg: { auth: `${secret}!` } } })), 'reg', undefined, 'f'),
        /^f: auths\["reg"\]\.auth is not base64$/,
      ],
      [() => lookupCredentials(parseDockerConfig(JSON.stringify({ auths: { reg: { auth: b64(secret) } } })), 'reg', undefined, 'f'), /user:password$/],
      [
        () => lookupCredentials(parseDockerConfig(JSON.stringify({ auths: { reg: { password: 7, username: secret } } })), 'reg', undefined, 'f'),
        /^f: auths\["reg"\]\.password is not a string$/,
      ],
      [
        () => lookupCredentials(parseDockerConfig(JSON.stringify({ auths: { reg: secret } })), 'reg', undefined, 'f'),
        /^f: auths\["reg"\] is not a JSON object$/,
      ],
    ];
    for (const [f, re] of cases) {
      const m = message(f);
      expect(m).toMatch(re);
      expect(m).not.toContain(secret.slice(0, 6));
    }
  });
});

describe('auth files', () => {
  it('findCredentials reads an explicit auth file; a missing file means none', async () => {
    const dir = await temps.make('creds');
    const file = join(dir, 'auth.json');
    await writeFile(file, JSON.stringify({ auths: { '127.0.0.1:5000': { auth: b64('u:p') } } }));
    expect(await findCredentials('127.0.0.1:5000', 'team/app', file)).toEqual({ username: 'u', password: 'p' });
    expect(await findCredentials('127.0.0.1:5001', 'team/app', file)).toBeUndefined();
    expect(await findCredentials('127.0.0.1:5000', 'team/app', join(dir, 'missing.json'))).toBeUndefined();
  });

  it('storeCredentials replaces an equivalent key and keeps other settings', async () => {
    const file = join(await temps.make('store'), 'auth.json');
    await writeFile(file, JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: b64('old:old') } }, credHelpers: { 'x.io': 'helper' } }));
    await storeCredentials(file, 'docker.io', { username: 'new', password: 'secret' });
    const config = await readAuthFile(file);
    expect(Object.keys(config.auths ?? {})).toEqual(['docker.io']);
    expect(config.credHelpers).toEqual({ 'x.io': 'helper' });
    expect(lookupCredentials(config, 'docker.io', 'library/busybox')).toEqual({ username: 'new', password: 'secret' });
    expect(await storeCredentials(file, 'docker.io', undefined)).toBe(true);
    expect(lookupCredentials(await readAuthFile(file), 'docker.io')).toBeUndefined();
  });
});
