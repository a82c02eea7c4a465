import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { copyReference } from '../../copy/copy.js';
import { parsePlatform } from '../../oci/platform.js';
import { parseImageName } from '../../transports/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { collect, contextFrom, parseBool, parsePositiveInt } from '../options.js';
import { createProgress, type ProgressMode } from '../progress.js';
import { signalOnInterrupt } from '../signals.js';

interface CopyFlags {
  all?: boolean;
  platform?: string[];
  preserveDigests?: boolean;
  format?: string;
  jobs?: number;
  digestfile?: string;
  srcCreds?: string;
  destCreds?: string;
  tlsVerify?: boolean;
  srcTlsVerify?: boolean;
  destTlsVerify?: boolean;
  authfile?: string;
  srcAuthfile?: string;
  destAuthfile?: string;
  quiet?: boolean;
  progress?: ProgressMode;
  policy?: string;
  removeSignatures?: boolean;
  signBy?: string;
  signByKeyFile?: string;
  signPassphraseFile?: string;
  signIdentity?: string;
  /** --registries.d (commander keeps the dot in the option's key). */
  'registries.d'?: string;
}

export function registerCopy(program: Command): void {
  program
    .command('copy')
    .description('copy an image (or a whole index) between registries, OCI layouts, archives and directories')
    .argument('<source>', 'e.g. docker://registry/repo:tag, oci:/dir:tag, oci-archive:/f.tar, dir:/d, docker-archive:/f.tar')
    .argument('<destination>', 'where to write the image')
    .option('-a, --all', 'copy every image of an index, keeping its digest')
    .option('--platform <os/arch[/variant]>', 'copy this platform of an index (repeatable)', collect)
    .option('--preserve-digests', 'fail rather than change any manifest digest')
    .option('-f, --format <oci|v2s2>', 'manifest format at the destination (default: as the source)')
    .option('-j, --jobs <n>', 'blobs copied in parallel', parsePositiveInt, 6)
    .option('--digestfile <path>', 'write the digest of the copied manifest to this file')
    .option('--src-creds <user:password>', 'credentials for the source registry')
    .option('--dest-creds <user:password>', 'credentials for the destination registry')
    .option('--tls-verify <bool>', 'require HTTPS and verified certificates on both sides', parseBool)
    .option('--src-tls-verify <bool>', 'the same for the source only', parseBool)
    .option('--dest-tls-verify <bool>', 'the same for the destination only', parseBool)
    .option('--authfile <path>', 'auth file for both sides')
    .option('--src-authfile <path>', 'auth file for the source')
    .option('--dest-authfile <path>', 'auth file for the destination')
    .option('--policy <file>', 'containers-policy.json the source must satisfy (checked before anything is written)')
    .option('--remove-signatures', 'do not carry cosign signatures, attestations, SBOMs and referrers along')
    .option('--sign-by <fingerprint>', 'GPG-sign the copied manifest with this key (signature to lookaside-staging, or a dir: image)')
    .option('--sign-by-key-file <path>', 'read the --sign-by secret key from this file instead of the GnuPG home')
    .option('--sign-passphrase-file <path>', 'file holding the passphrase of the --sign-by key')
    .option('--sign-identity <reference>', 'identity to sign (default: the destination reference)')
    .option('--registries.d <dir>', 'registries.d directory for lookaside signature storage')
    .option('-q, --quiet', 'print nothing but errors')
    .option('--progress <auto|tty|json|none>', 'progress output: bars on a terminal, JSON lines otherwise', 'auto')
    .action(async (source: string, destination: string, o: CopyFlags) => {
      if (o.format && o.format !== 'oci' && o.format !== 'v2s2') throw new InvalidInputError(`--format must be oci or v2s2, got "${o.format}"`);
      const srcRef = parseImageName(source);
      const destRef = parseImageName(destination);
      const policy = o.policy ? await (await import('../../policy/parse.js')).loadPolicy(o.policy) : undefined;
      const registries = o['registries.d'] ? { registriesDir: o['registries.d'] } : {};
      const srcContext = { ...contextFrom({ creds: o.srcCreds, tlsVerify: o.srcTlsVerify ?? o.tlsVerify, authfile: o.srcAuthfile ?? o.authfile }), ...registries };
      const destContext = { ...contextFrom({ creds: o.destCreds, tlsVerify: o.destTlsVerify ?? o.tlsVerify, authfile: o.destAuthfile ?? o.authfile }), ...registries };
      // The key is unlocked and the destination checked before anything is copied.
      const signer = o.signBy ? await (await import('./gpg-options.js')).copySigner(destRef, o.signBy, { keyFile: o.signByKeyFile, passphraseFile: o.signPassphraseFile, identity: o.signIdentity, context: destContext }) : undefined;
      const progress = createProgress(o.quiet ? 'none' : (o.progress ?? 'auto'));
      const signal = signalOnInterrupt();
      try {
        const result = await copyReference(srcRef, destRef, {
          all: o.all,
          platforms: o.platform?.map(parsePlatform),
          preserveDigests: o.preserveDigests,
          format: o.format as 'oci' | 'v2s2' | undefined,
          jobs: o.jobs,
          signal,
          policy,
          signatures: o.removeSignatures ? 'remove' : 'copy',
          onProgress: progress.listener,
          srcContext,
          destContext,
        });
        progress.done();
        if (signer) await signer.sign(result.digest, signal);
        if (o.digestfile) await writeFile(o.digestfile, result.digest);
        if (!o.quiet && !process.stderr.isTTY && o.progress !== 'none') {
          const { manifest: _bytes, ...facts } = result;
          process.stderr.write(JSON.stringify({ type: 'result', ...facts }) + '\n');
        } else if (!o.quiet) {
          process.stderr.write(
            `Copied ${result.digest}: ${result.blobsCopied} blobs copied, ${result.blobsReused} already present` +
              (result.platforms.length ? `, platforms ${result.platforms.join(', ')}` : '') +
              '\n',
          );
        }
      } catch (err) {
        progress.done();
        throw err;
      }
    });
}
