/**
 * Throwaway GnuPG homes for GPG signing tests: real `gpg` (Debian's 2.2) generates the keys, so
 * Stevedore's OpenPGP code is checked against keys and signatures it did not make itself.
 *
 *   const home = await makeGpgHome('signer');
 *   afterAll(() => home.remove());   // stops the gpg-agent gpg started for this home
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runChecked } from '../../hack/lib/harness/procs.js';
import { makeTempDir, removeTempDir } from '../../hack/lib/harness/tmp.js';

export interface GpgHome {
  dir: string;
  env: NodeJS.ProcessEnv;
  /** Primary-key fingerprint of the key made for `name`. */
  fingerprint: string;
  /** `gpg --export` of the home's public keys: binary, and armored. */
  publicKeyFile: string;
  armoredPublicKeyFile: string;
  gpg(args: readonly string[], input?: string | Buffer): Promise<{ stdout: string; stderr: string }>;
  /** Adds another key to the home and returns its fingerprint. */
  addKey(name: string, passphrase?: string): Promise<string>;
  remove(): Promise<void>;
}

export async function makeGpgHome(name: string, opts: { passphrase?: string } = {}): Promise<GpgHome> {
  const dir = await makeTempDir(`gnupg-${name}`);
  const env = { ...process.env, GNUPGHOME: dir };
  const gpg = async (args: readonly string[], input?: string | Buffer) =>
    runChecked('gpg', ['--batch', '--no-tty', ...args], { env, input, timeoutMs: 120_000 });
  const addKey = async (keyName: string, passphrase = '') => {
    const uid = `${keyName} <${keyName}@stevedore.test>`;
    await gpg(['--pinentry-mode', 'loopback', '--passphrase', passphrase, '--quick-gen-key', uid, 'rsa2048', 'default', 'never']);
    const { stdout } = await gpg(['--with-colons', '--list-keys', uid]);
    const fpr = stdout
      .split('\n')
      .find((l) => l.startsWith('fpr:'))!
      .split(':')[9]!;
    return fpr;
  };
  const fingerprint = await addKey(name, opts.passphrase);
  const publicKeyFile = join(dir, 'pub.gpg');
  const armoredPublicKeyFile = join(dir, 'pub.asc');
  const home: GpgHome = {
    dir,
    env,
    fingerprint,
    publicKeyFile,
    armoredPublicKeyFile,
    gpg,
    addKey,
    async remove() {
      await runChecked('gpgconf', ['--kill', 'gpg-agent'], { env }).catch(() => undefined);
      await removeTempDir(dir);
    },
  };
  await exportPublic(home, fingerprint, publicKeyFile, false);
  await exportPublic(home, fingerprint, armoredPublicKeyFile, true);
  return home;
}

/** Writes `gpg --export [--armor] FPR` to `file`. */
export async function exportPublic(home: GpgHome, fpr: string, file: string, armor: boolean): Promise<void> {
  const res = await runBinary(home, ['--export', ...(armor ? ['--armor'] : []), fpr]);
  await writeFile(file, res);
}

/** gpg's stdout as bytes (runChecked decodes as UTF-8, which would corrupt binary output). */
export async function runBinary(home: GpgHome, args: readonly string[]): Promise<Buffer> {
  const out = join(home.dir, `out-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  await home.gpg(['--yes', '--output', out, ...args]);
  return readFile(out);
}
