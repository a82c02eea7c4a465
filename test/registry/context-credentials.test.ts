import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contextCredentials } from '../../src/registry/credentials.js';

describe('contextCredentials: whose credentials a context may use', () => {
  let dir: string;
  let authFile: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ctx-creds-'));
    authFile = join(dir, 'auth.json');
    const auth = Buffer.from('team-a:s3cret').toString('base64');
    await writeFile(authFile, JSON.stringify({ auths: { 'registry.example': { auth } } }));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('explicit credentials win over any file', () => {
    const c = contextCredentials({ credentials: { username: 'u', password: 'p' }, authFile }, 'registry.example');
    expect(c).toEqual({ username: 'u', password: 'p' });
  });

  it('a CLI context falls back to the auth file, found lazily', async () => {
    const c = contextCredentials({ authFile }, 'registry.example', 'team-a/app');
    expect(typeof c).toBe('function');
    expect(await (c as () => Promise<unknown>)()).toEqual({ username: 'team-a', password: 's3cret' });
  });

  it('a context that forbids ambient credentials is anonymous, even with an auth file that matches', () => {
    expect(contextCredentials({ authFile, ambientCredentials: false }, 'registry.example', 'team-a/app')).toBeUndefined();
  });
});
