import type { PrivateKey } from 'openpgp';
import { readFile } from 'node:fs/promises';
import { readGpgSecretKey, readPassphraseFile, secretKeyFromGpgHome } from '../../sign/gpg-keys.js';
import { KeyError } from '../../sign/errors.js';

/**
 * The GPG secret key a `--sign-by FINGERPRINT` names: from `--sign-by-key-file` (armored or binary
 * `gpg --export-secret-keys` output) when given, else exported from the GnuPG home ($GNUPGHOME or
 * ~/.gnupg) by the gpg binary. The passphrase, if any, comes from a file, never the command line.
 */
export async function gpgSigningKey(fingerprint: string, o: { keyFile?: string; passphraseFile?: string; signal?: AbortSignal }): Promise<PrivateKey> {
  const passphrase = o.passphraseFile ? await readPassphraseFile(o.passphraseFile) : undefined;
  if (o.keyFile) {
    let data: Buffer;
    try {
      data = await readFile(o.keyFile);
    } catch (err) {
      throw new KeyError(`cannot read secret key file ${o.keyFile}: ${(err as Error).message}`);
    }
    return readGpgSecretKey(data, { fingerprint, passphrase, source: o.keyFile });
  }
  return secretKeyFromGpgHome(fingerprint, { passphrase, signal: o.signal });
}
