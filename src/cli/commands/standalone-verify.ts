import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { publicKeysFromGpgHome, readGpgPublicKeyFiles } from '../../sign/gpg-keys.js';
import { standaloneVerify } from '../../sign/gpg-standalone.js';
import { InvalidInputError } from '../../util/errors.js';

/**
 * `stevedore standalone-verify MANIFEST DOCKER-REFERENCE KEY-FINGERPRINTS SIGNATURE`, as skopeo's:
 * fingerprints comma-separated (or `any` with --public-key-file), keys from the file or the GnuPG home.
 */
export function registerStandaloneVerify(program: Command): void {
  program
    .command('standalone-verify')
    .description('verify a GPG simple signature of a manifest file (as skopeo standalone-verify)')
    .argument('<manifest>', 'manifest file')
    .argument('<docker-reference>', 'the identity the signature must claim')
    .argument('<key-fingerprints>', 'comma-separated fingerprints of the acceptable signers, or "any" with --public-key-file')
    .argument('<signature>', 'signature file')
    .option('--public-key-file <path>', "public keys (gpg --export, armored or binary) instead of the GnuPG home's keyring")
    .action(async (manifestFile: string, ref: string, fprs: string, sigFile: string, o: { publicKeyFile?: string }) => {
      const read = (f: string, what: string) =>
        readFile(f).catch((err: Error) => {
          throw new InvalidInputError(`cannot read ${what} ${f}: ${err.message}`);
        });
      if (fprs === 'any' && !o.publicKeyFile) throw new InvalidInputError('"any" fingerprint is only allowed with --public-key-file');
      const fingerprints =
        fprs === 'any'
          ? 'any'
          : fprs
              .split(',')
              .map((s) => s.trim())
              .filter((s) => s !== '');
      if (fingerprints !== 'any' && fingerprints.length === 0) throw new InvalidInputError('no key fingerprints given');
      const keys = o.publicKeyFile ? await readGpgPublicKeyFiles([o.publicKeyFile]) : await publicKeysFromGpgHome();
      const r = await standaloneVerify(await read(manifestFile, 'manifest'), ref, fingerprints, await read(sigFile, 'signature'), keys, manifestFile);
      process.stdout.write(`Signature verified using fingerprint ${r.fingerprint}, digest ${r.digest}\n`);
    });
}
