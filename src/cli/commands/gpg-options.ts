import type { PrivateKey } from 'openpgp';
import { readFile } from 'node:fs/promises';
import { readGpgSecretKey, readPassphraseFile, secretKeyFromGpgHome } from '../../sign/gpg-keys.js';
import { KeyError } from '../../sign/errors.js';
import type { CopySigner } from '../../sign/gpg-copy.js';
import type { TransportContext, TransportReference } from '../../transports/types.js';

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
/** The signer of `copy --sign-by`: key unlocked and destination checked up front. */
export async function copySigner(
  dest: TransportReference,
  fingerprint: string,
  o: { keyFile?: string; passphraseFile?: string; identity?: string; context?: TransportContext },
): Promise<CopySigner> {
  const { gpgCopySigner } = await import('../../sign/gpg-copy.js');
  const key = await gpgSigningKey(fingerprint, { keyFile: o.keyFile, passphraseFile: o.passphraseFile });
  return gpgCopySigner(dest, key, { identity: o.identity, context: o.context });
}
