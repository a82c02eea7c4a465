import type { Command } from 'commander';
import { parseManifest } from '../../oci/manifest.js';
import { parseReference } from '../../oci/reference.js';
import { InvalidInputError } from '../../util/errors.js';
import { addSourceOptions, contextFrom } from '../options.js';
import { signalOnInterrupt } from '../signals.js';
import { gpgSigningKey } from './gpg-options.js';
import { registerTrust } from './trust.js';

interface ImageSignFlags {
  signBy: string;
  signByKeyFile?: string;
  passphraseFile?: string;
  directory?: string;
  /** --registries.d (commander keeps the dot in the option's key). */
  'registries.d'?: string;
  all?: boolean;
  creds?: string;
  tlsVerify?: boolean;
  authfile?: string;
}

/**
 * `stevedore image sign --sign-by FPR docker://IMAGE...` (podman's): a GPG simple signature of each
 * image's manifest, stored in lookaside-staging (registries.d) or `--directory`; with --all, each
 * manifest an index lists is signed too. `image trust set|show` live beside it.
 */
export function registerImage(program: Command): void {
  const image = program.command('image').description('image signing and trust (as podman image sign / podman image trust)');
  addSourceOptions(
    image
      .command('sign')
      .description('GPG-sign registry images; signatures go to lookaside storage (registries.d lookaside-staging)')
      .argument('<images...>', 'docker://REGISTRY/REPO:TAG (the docker:// may be left out)')
      .requiredOption('--sign-by <fingerprint>', 'GPG key fingerprint (or key ID) to sign with')
      .option('--sign-by-key-file <path>', 'read the secret key from this file instead of the GnuPG home')
      .option('--passphrase-file <path>', 'file holding the passphrase of the secret key')
      .option('-d, --directory <dir>', 'store signatures here instead of the configured lookaside-staging')
      .option('--registries.d <dir>', 'registries.d directory (default ~/.config/containers/registries.d or /etc/containers/registries.d)')
      .option('-a, --all', 'also sign every manifest an index lists'),
  ).action(async (images: string[], o: ImageSignFlags) => {
    const signal = signalOnInterrupt();
    const key = await gpgSigningKey(o.signBy, { keyFile: o.signByKeyFile, passphraseFile: o.passphraseFile, signal });
    const context = { ...contextFrom(o), ...(o['registries.d'] ? { registriesDir: o['registries.d'] } : {}) };
    const { signImageWithGpg } = await import('../../sign/gpg-image.js');
    for (const name of images) {
      if (/^(oci|oci-archive|dir|docker-archive|docker-daemon|containers-storage):/.test(name))
        throw new InvalidInputError(`${name}: only registry images (docker://) can be signed`);
      const ref = parseReference(name.replace(/^docker:\/\//, ''));
      const top = await signImageWithGpg(ref, key, { directory: o.directory, context, signal });
      process.stdout.write(`${top.location}\n`);
      if (o.all) {
        const { registryClientFor } = await import('../../transports/docker.js');
        const { getManifest } = await import('../../registry/manifests.js');
        const client = registryClientFor(ref, context);
        try {
          const raw = await getManifest(client, ref.repository, top.digest, { signal });
          const parsed = parseManifest(raw.bytes, raw.mediaType);
          if (parsed.kind === 'index') {
            for (const child of parsed.index.manifests) {
              const r = await signImageWithGpg(ref, key, { digest: child.digest, directory: o.directory, context, signal });
              process.stdout.write(`${r.location}\n`);
            }
          }
        } finally {
          await client.close();
        }
      }
    }
  });
  registerTrust(image);
}
