import { readFile, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { standaloneSign } from '../../sign/gpg-standalone.js';
import { InvalidInputError } from '../../util/errors.js';
import { gpgSigningKey } from './gpg-options.js';

/** `stevedore standalone-sign MANIFEST DOCKER-REFERENCE KEY-FINGERPRINT --output FILE`, as skopeo's. */
export function registerStandaloneSign(program: Command): void {
  program
    .command('standalone-sign')
    .description('create a GPG simple signature of a manifest file for a docker reference (as skopeo standalone-sign)')
    .argument('<manifest>', 'manifest file')
    .argument('<docker-reference>', 'the identity to sign, e.g. registry.example.com/app:1')
    .argument('<key-fingerprint>', 'GPG key fingerprint (or key ID) of the secret key')
    .requiredOption('-o, --output <signature>', 'write the signature to this file')
    .option('--passphrase-file <path>', 'file holding the passphrase of the secret key')
    .option('--sign-by-key-file <path>', 'read the secret key from this file (gpg --export-secret-keys) instead of the GnuPG home')
    .action(async (manifestFile: string, ref: string, fpr: string, o: { output: string; passphraseFile?: string; signByKeyFile?: string }) => {
      const manifest = await readFile(manifestFile).catch((err: Error) => {
        throw new InvalidInputError(`cannot read manifest ${manifestFile}: ${err.message}`);
      });
      const key = await gpgSigningKey(fpr, { keyFile: o.signByKeyFile, passphraseFile: o.passphraseFile });
      const sig = await standaloneSign(manifest, ref, key, manifestFile);
      await writeFile(o.output, sig, { mode: 0o644 });
    });
}
