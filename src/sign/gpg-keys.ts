import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { decryptKey, readKeys, readPrivateKeys, type Key, type PrivateKey, type PublicKey } from 'openpgp';
import { errorMessage } from '../util/errors.js';
import { KeyError } from './errors.js';

const ARMOR_BLOCK = /-----BEGIN PGP (?:PUBLIC|PRIVATE) KEY BLOCK-----[\s\S]*?-----END PGP (?:PUBLIC|PRIVATE) KEY BLOCK-----/g;

/** Upper-case hex fingerprint, as gpg prints it and policy files and skopeo's arguments use it. */
export function fingerprintOf(key: Key): string {
  return key.getFingerprint().toUpperCase();
}

/**
 * OpenPGP public keys from a key file or keyring as `gpg --export` writes it: binary, or ASCII
 * armored (several armor blocks may be concatenated). Secret keys are accepted and used as their
 * public part. `source` names the file (or policy field) in errors.
 */
export async function readGpgPublicKeys(data: Uint8Array, source: string): Promise<PublicKey[]> {
  const text = Buffer.from(data).toString('latin1');
  const keys: PublicKey[] = [];
  try {
    // Armored blocks, and whatever binary keys lie around them: key files concatenated into one
    // keyring (an ImageMirror policy's keyPaths joined from its Secret) may mix both forms.
    const blocks = text.match(ARMOR_BLOCK) ?? [];
    for (const armoredKeys of blocks) keys.push(...(await readKeys({ armoredKeys })).map((k) => k.toPublic()));
    // Each block with the line end gpg writes after it; the binary bytes around are kept exactly.
    const rest = text.replace(new RegExp(`${ARMOR_BLOCK.source}\\r?\\n?`, 'g'), '');
    if (rest.includes('-----BEGIN PGP')) throw new Error('an incomplete "BEGIN PGP PUBLIC KEY BLOCK" armor');
    if (blocks.length === 0 || !/^\s*$/.test(rest)) {
      keys.push(...(await readKeys({ binaryKeys: Uint8Array.from(Buffer.from(rest, 'latin1')) })).map((k) => k.toPublic()));
    }
  } catch (err) {
    throw new KeyError(`${source}: not an OpenPGP public key or keyring: ${errorMessage(err)}`, { cause: err });
  }
  if (keys.length === 0) throw new KeyError(`${source}: contains no OpenPGP keys`);
  return keys;
}

/** Reads the key files of a policy or a command line, in order; a file that cannot be read is named. */
export async function readGpgPublicKeyFiles(paths: readonly string[]): Promise<PublicKey[]> {
  const out: PublicKey[] = [];
  for (const path of paths) {
    let data: Buffer;
    try {
      data = await readFile(path);
    } catch (err) {
      throw new KeyError(`cannot read GPG key file ${path}: ${errorMessage(err)}`, { cause: err });
    }
    out.push(...(await readGpgPublicKeys(data, path)));
  }
  return out;
}

/** Whether `wanted` (a fingerprint, or a 16-hex-digit key ID) names the key or one of its subkeys. */
export function keyMatches(key: Key, wanted: string): boolean {
  const w = wanted.replace(/^0x/i, '').replace(/\s/g, '').toUpperCase();
  const ids = [key, ...key.getSubkeys()].flatMap((k) => [k.getFingerprint().toUpperCase(), k.getKeyID().toHex().toUpperCase()]);
  return ids.includes(w);
}

/**
 * A secret key ready to sign: read from armored or binary data, chosen by `fingerprint` when the
 * data holds several, and unlocked with `passphrase` when it is protected. Errors never quote key
 * material or the passphrase.
 */
export async function readGpgSecretKey(data: Uint8Array, opts: { fingerprint?: string; passphrase?: string; source: string }): Promise<PrivateKey> {
  let keys: PrivateKey[];
  try {
    const text = Buffer.from(data).toString('latin1');
    keys = text.includes('-----BEGIN PGP PRIVATE KEY BLOCK-----')
      ? await readPrivateKeys({ armoredKeys: text })
      : await readPrivateKeys({ binaryKeys: Uint8Array.from(data) });
  } catch (err) {
    throw new KeyError(`${opts.source}: not an OpenPGP secret key: ${errorMessage(err)}`);
  }
  const candidates = opts.fingerprint ? keys.filter((k) => keyMatches(k, opts.fingerprint!)) : keys;
  if (candidates.length === 0) throw new KeyError(`${opts.source}: holds no secret key ${opts.fingerprint}`);
  if (candidates.length > 1) throw new KeyError(`${opts.source}: holds ${candidates.length} secret keys; name one by fingerprint`);
  const key = candidates[0]!;
  if (key.isDecrypted()) return key;
  if (opts.passphrase === undefined) throw new KeyError(`secret key ${fingerprintOf(key)} is protected by a passphrase; give a passphrase file`);
  try {
    return await decryptKey({ privateKey: key, passphrase: opts.passphrase });
  } catch {
    throw new KeyError(`cannot unlock secret key ${fingerprintOf(key)}: wrong passphrase`);
  }
}

/** A passphrase file's first line (trailing newline dropped), as skopeo's --passphrase-file reads it. */
export async function readPassphraseFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new KeyError(`cannot read passphrase file ${path}: ${errorMessage(err)}`);
  }
  return text.split('\n')[0]!.replace(/\r$/, '');
}

export interface GpgHomeOptions {
  /** GnuPG home; default $GNUPGHOME, else ~/.gnupg (what gpg itself picks). */
  gnupgHome?: string;
  passphrase?: string;
  signal?: AbortSignal;
}

/**
 * The secret key `fingerprint` from a GnuPG home. GnuPG 2.1+ keeps secret keys in its agent's own
 * format (private-keys-v1.d), which no OpenPGP library reads, so the key is exported by the `gpg`
 * binary (`--export-secret-keys`, passphrase through loopback pinentry on a pipe) and used by
 * openpgp.js; gpg does no signing here.
 */
export async function secretKeyFromGpgHome(fingerprint: string, opts: GpgHomeOptions = {}): Promise<PrivateKey> {
  if (!/^[0-9A-Za-z@.<>_+ -]+$/.test(fingerprint) || fingerprint.startsWith('-')) throw new KeyError(`invalid key name "${fingerprint}"`);
  const env = { ...process.env, ...(opts.gnupgHome ? { GNUPGHOME: opts.gnupgHome } : {}) };
  const args = ['--batch', '--no-tty', '--pinentry-mode', 'loopback'];
  if (opts.passphrase !== undefined) args.push('--passphrase-fd', '0');
  args.push('--export-secret-keys', '--', fingerprint);
  const exported = await new Promise<Buffer>((resolve, reject) => {
    const child = execFile('gpg', args, { env, encoding: 'buffer', maxBuffer: 1 << 20, signal: opts.signal }, (err, stdout, stderr) => {
      if (err) reject(new KeyError(`gpg --export-secret-keys ${fingerprint} failed: ${Buffer.from(stderr).toString('utf8').trim() || errorMessage(err)}`));
      else resolve(stdout);
    });
    // gpg may exit before reading stdin (no passphrase asked for): its exit status reports that,
    // so a broken pipe here is not an error of its own (left unhandled it ended the process).
    child.stdin?.on('error', () => {});
    child.stdin?.end(opts.passphrase !== undefined ? `${opts.passphrase}\n` : '');
  });
  if (exported.length === 0) throw new KeyError(`no secret key "${fingerprint}" in the GnuPG home ${opts.gnupgHome ?? env.GNUPGHOME ?? '~/.gnupg'}`);
  return readGpgSecretKey(exported, {
    fingerprint: /^(0x)?[0-9A-Fa-f]{16,40}$/.test(fingerprint) ? fingerprint : undefined,
    passphrase: opts.passphrase,
    source: `gpg key ${fingerprint}`,
  });
}

/**
 * Every public key of a GnuPG home (`gpg --export`, binary), what skopeo's standalone-verify
 * trusts when no key file is given. An empty keyring is an error naming the home.
 */
export async function publicKeysFromGpgHome(opts: { gnupgHome?: string; signal?: AbortSignal } = {}): Promise<PublicKey[]> {
  const env = { ...process.env, ...(opts.gnupgHome ? { GNUPGHOME: opts.gnupgHome } : {}) };
  const where = opts.gnupgHome ?? env.GNUPGHOME ?? '~/.gnupg';
  const exported = await new Promise<Buffer>((resolve, reject) => {
    execFile('gpg', ['--batch', '--no-tty', '--export'], { env, encoding: 'buffer', maxBuffer: 16 << 20, signal: opts.signal }, (err, stdout, stderr) => {
      if (err) reject(new KeyError(`gpg --export (GnuPG home ${where}) failed: ${Buffer.from(stderr).toString('utf8').trim() || errorMessage(err)}`));
      else resolve(stdout);
    });
  });
  if (exported.length === 0) throw new KeyError(`the GnuPG home ${where} holds no public keys`);
  return readGpgPublicKeys(exported, `GnuPG home ${where}`);
}
