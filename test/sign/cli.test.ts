/**
 * `stevedore generate-key`: the password from COSIGN_PASSWORD or a terminal prompt (run under a
 * real pseudo-terminal with script(1)), files cosign can use, and the refusals a user can act on.
 */
import { existsSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPrivateKey } from '../../src/sign/keys.js';
import { runCommand } from '../../hack/lib/harness/procs.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { cleanupCli, ensureBuilt, REPO_ROOT, stevedore } from '../cli/stevedore.js';
import { cosign } from './cosign.js';

const temps = new TempDirs();
let dir: string;

beforeAll(async () => {
  dir = await temps.make('sign-cli');
  await writeFile(join(dir, 'blob'), 'data\n');
});
afterAll(async () => {
  await cleanupCli();
  await temps.cleanup();
});

describe('stevedore generate-key', () => {
  it('writes cosign.key (mode 0600, encrypted with COSIGN_PASSWORD) and cosign.pub, which cosign uses', async () => {
    const prefix = join(dir, 'env');
    const r = await stevedore(['generate-key', '--output-key-prefix', prefix], { env: { COSIGN_PASSWORD: 'from-env' } });
    expect(r.code, r.stderr).toBe(0);
    expect((await stat(`${prefix}.key`)).mode & 0o777).toBe(0o600);
    expect(await readFile(`${prefix}.pub`, 'utf8')).toContain('-----BEGIN PUBLIC KEY-----');
    const signed = await cosign(['sign-blob', '--key', `${prefix}.key`, '--tlog-upload=false', '--yes', join(dir, 'blob')], { password: 'from-env' });
    expect(signed.code, signed.stderr).toBe(0);
  });

  it('asks for the password twice on a terminal, with echo off', async () => {
    await ensureBuilt();
    const prefix = join(dir, 'tty');
    const cmd = `env -u COSIGN_PASSWORD ${process.execPath} ${join(REPO_ROOT, 'bin', 'stevedore.js')} generate-key --output-key-prefix ${prefix}`;
    // script(1) gives the command a pseudo-terminal; the password is typed after each prompt.
    const feeder = `(sleep 1; printf 'typed-pw\\r'; sleep 1; printf 'typed-pw\\r'; sleep 2) | script -q -c "${cmd}" /dev/null`;
    const r = await runCommand('sh', ['-c', feeder], { timeoutMs: 30_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('Enter password for private key:');
    expect(r.stdout).toContain('Enter password for private key again:');
    expect(r.stdout).not.toContain('typed-pw');
    expect((await loadPrivateKey(`${prefix}.key`, 'typed-pw')).type).toBe('private');
  });

  it('refuses to overwrite keys, and to run without a password source', async () => {
    const prefix = join(dir, 'env');
    const again = await stevedore(['generate-key', '--output-key-prefix', prefix], { env: { COSIGN_PASSWORD: 'x' } });
    expect(again.code).toBe(125);
    expect(again.stderr).toContain(`${prefix}.key already exists; pass --force`);
    const env = { ...process.env };
    delete env.COSIGN_PASSWORD;
    const fresh = join(dir, 'nopass');
    const r = await stevedore(['generate-key', '--output-key-prefix', fresh], { env: { ...env, COSIGN_PASSWORD: undefined } });
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('set COSIGN_PASSWORD (it may be empty) or run on a terminal');
    expect(existsSync(`${fresh}.key`)).toBe(false);
  });
});
