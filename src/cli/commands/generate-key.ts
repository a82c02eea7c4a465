import { constants } from 'node:fs';
import { access, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { generateKeyPair } from '../../sign/keys.js';
import { readPassword } from '../../sign/password.js';
import { InvalidInputError } from '../../util/errors.js';

interface GenerateKeyFlags {
  outputKeyPrefix: string;
  force?: boolean;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path, constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

/** `stevedore generate-key`: an ECDSA P-256 pair as `cosign generate-key-pair` writes it (cosign.key, cosign.pub). */
export function registerGenerateKey(program: Command): void {
  program
    .command('generate-key')
    .description('generate a cosign-compatible key pair: <prefix>.key (encrypted with COSIGN_PASSWORD or a prompted password) and <prefix>.pub')
    .option('--output-key-prefix <prefix>', 'file name prefix of the key pair', 'cosign')
    .option('--force', 'overwrite existing key files')
    .action(async (o: GenerateKeyFlags) => {
      const keyPath = `${o.outputKeyPrefix}.key`;
      const pubPath = `${o.outputKeyPrefix}.pub`;
      if (!o.force) {
        for (const p of [keyPath, pubPath]) {
          if (await exists(p)) throw new InvalidInputError(`${p} already exists; pass --force to overwrite it`);
        }
      }
      const password = await readPassword('Enter password for private key: ', { confirm: true });
      const { privatePem, publicPem } = generateKeyPair(password);
      await writeFile(keyPath, privatePem, { mode: 0o600 });
      await writeFile(pubPath, publicPem, { mode: 0o644 });
      process.stderr.write(`Private key written to ${keyPath}\nPublic key written to ${pubPath}\n`);
    });
}
