import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { copyReference, type CopyResult } from '../../copy/copy.js';
import { DEFAULT_COPY_JOBS } from '../../copy/image.js';
import type { LayerCompression } from '../../oci/layer-compression.js';
import { parsePlatform } from '../../oci/platform.js';
import { parseImageName } from '../../transports/index.js';
import { DockerReference } from '../../transports/docker.js';
import type { TransportContext, TransportReference } from '../../transports/types.js';
import { InvalidInputError, UnsupportedError } from '../../util/errors.js';
import { collect, parseBool, parseCompressionFormat, parsePositiveInt } from '../options.js';
import { createProgress, type ProgressMode } from '../progress.js';
import { signalOnInterrupt } from '../signals.js';
import { addRetryOptions, addSideOptions, retryPolicy, sideContext, sideFlags, type RetryFlags } from '../transfer-options.js';

interface CopyFlags extends RetryFlags {
  all?: boolean;
  multiArch?: string;
  platform?: string[];
  preserveDigests?: boolean;
  format?: string;
  jobs?: number;
  digestfile?: string;
  additionalTag?: string[];
  destCompress?: boolean;
  destDecompress?: boolean;
  destCompressFormat?: string;
  destCompressLevel?: string;
  tlsVerify?: boolean;
  authfile?: string;
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

/** skopeo's --multi-arch: all (= --all), system (the host's image, the default); index-only is refused. */
function multiArch(o: CopyFlags): boolean | undefined {
  if (o.multiArch === undefined) return o.all;
  if (o.all && o.multiArch !== 'all') throw new InvalidInputError(`--all and --multi-arch ${o.multiArch} contradict each other`);
  if (o.multiArch === 'all') return true;
  if (o.multiArch === 'system') return false;
  if (o.multiArch === 'index-only') {
    throw new UnsupportedError(
      '--multi-arch index-only is not supported: it writes an index whose images are absent, which distribution and most registries refuse; copy the platforms you need with --platform (repeatable) or everything with --all',
    );
  }
  throw new InvalidInputError(`--multi-arch must be all, system or index-only, got "${o.multiArch}"`);
}

/**
 * skopeo's --dest-compress, --dest-decompress, --dest-compress-format and --dest-compress-level.
 * As in skopeo, --dest-compress and --dest-decompress apply to `dir:` destinations only (a registry
 * gets compressed layers whatever they say); --dest-compress-format applies everywhere.
 */
export function compressionFlags(
  o: Pick<CopyFlags, 'destCompress' | 'destDecompress' | 'destCompressFormat' | 'destCompressLevel'>,
  destTransport: string,
): { compression?: LayerCompression; compressionLevel?: number } {
  if (o.destCompress && o.destDecompress) throw new InvalidInputError('--dest-compress and --dest-decompress contradict each other');
  const dir = destTransport === 'dir';
  let format: LayerCompression | undefined = o.destDecompress && dir ? 'none' : o.destCompress ? 'gzip' : undefined;
  if (o.destCompressFormat !== undefined) {
    if (o.destDecompress) throw new InvalidInputError('--dest-decompress and --dest-compress-format contradict each other');
    format = parseCompressionFormat(o.destCompressFormat, '--dest-compress-format');
  }
  let level: number | undefined;
  if (o.destCompressLevel !== undefined) {
    level = Number(o.destCompressLevel);
    const max = format?.startsWith('zstd') ? 22 : 9;
    if (format === undefined || format === 'none') throw new InvalidInputError('--dest-compress-level needs --dest-compress or --dest-compress-format');
    if (!Number.isInteger(level) || level < 1 || level > max)
      throw new InvalidInputError(`--dest-compress-level: expected 1-${max} for ${format}, got "${o.destCompressLevel}"`);
  }
  return { ...(format ? { compression: format } : {}), ...(level !== undefined ? { compressionLevel: level } : {}) };
}

/** skopeo's --additional-tag: the copied image under more tags of the destination repository (registries). */
async function addTags(destRef: TransportReference, ctx: TransportContext, result: CopyResult, tags: readonly string[], signal: AbortSignal): Promise<void> {
  if (!(destRef instanceof DockerReference))
    throw new UnsupportedError(`--additional-tag is supported for docker:// destinations only (${destRef.transport}: has no further tags)`);
  for (const tag of tags) {
    const dest = await new DockerReference({ registry: destRef.ref.registry, repository: destRef.ref.repository, tag }).newDestination(ctx);
    try {
      await dest.putManifest(result.manifest, { top: true, signal });
      await dest.commit({ signal });
    } finally {
      await dest.close();
    }
  }
}

export function registerCopy(program: Command): void {
  const cmd = program
    .command('copy')
    .description('copy an image (or a whole index) between registries, OCI layouts, archives and directories')
    .argument('<source>', 'e.g. docker://registry/repo:tag, oci:/dir:tag, oci-archive:/f.tar, dir:/d, docker-archive:/f.tar')
    .argument('<destination>', 'where to write the image')
    .option('-a, --all', 'copy every image of an index, keeping its digest')
    .option('--multi-arch <all|system|index-only>', "which images of an index to copy, as skopeo: all (= --all) or system (this host's, the default)")
    .option('--platform <os/arch[/variant]>', 'copy this platform of an index (repeatable)', collect)
    .option('--preserve-digests', 'fail rather than change any manifest digest')
    .option('-f, --format <oci|v2s2>', 'manifest format at the destination (default: as the source)')
    .option('-j, --jobs <n>', 'blobs copied in parallel', parsePositiveInt, DEFAULT_COPY_JOBS)
    .option('--digestfile <path>', 'write the digest of the copied manifest to this file')
    .option('--dest-compress', 'gzip every layer at the destination (digests change)')
    .option('--dest-decompress', 'store every layer uncompressed at the destination (digests change)')
    .option(
      '--dest-compress-format <gzip|zstd|zstd:chunked>',
      'convert every layer to this compression (digests change; zstd makes OCI manifests; zstd:chunked adds a table of contents for partial pulls)',
    )
    .option('--dest-compress-level <n>', 'compression level for --dest-compress(-format): gzip 1-9, zstd 1-22')
    .option('--additional-tag <tag>', 'also tag the copied image with this tag at the destination registry (repeatable)', collect)
    .option('--tls-verify [bool]', 'require HTTPS and verified certificates on both sides', parseBool)
    .option('--authfile <path>', 'auth file for both sides')
    .option('--policy <file>', 'containers-policy.json the source must satisfy (checked before anything is written)')
    .option('--remove-signatures', 'do not carry cosign signatures, attestations, SBOMs and referrers along')
    .option('--sign-by <fingerprint>', 'GPG-sign the copied manifest with this key (signature to lookaside-staging, or a dir: image)')
    .option('--sign-by-key-file <path>', 'read the --sign-by secret key from this file instead of the GnuPG home')
    .option('--sign-passphrase-file <path>', 'file holding the passphrase of the --sign-by key')
    .option('--sign-identity <reference>', 'identity to sign (default: the destination reference)')
    .option('--registries.d <dir>', 'registries.d directory for lookaside signature storage')
    .option('-q, --quiet', 'print nothing but errors')
    .option(
      '--progress <auto|tty|text|json|none>',
      "progress output: bars on a terminal, skopeo's text lines otherwise (auto); json: one JSON object per event and a result line",
      'auto',
    );
  addSideOptions(cmd, 'src', parseBool);
  addSideOptions(cmd, 'dest', parseBool);
  addRetryOptions(cmd).action(async (source: string, destination: string, o: CopyFlags) => {
    if (o.format && o.format !== 'oci' && o.format !== 'v2s2') throw new InvalidInputError(`--format must be oci or v2s2, got "${o.format}"`);
    const all = multiArch(o);
    if (all && o.platform?.length) throw new InvalidInputError('--all (or --multi-arch all) and --platform contradict each other: --all copies every platform');
    const retry = retryPolicy(o);
    const registries = o['registries.d'] ? { registriesDir: o['registries.d'] } : {};
    const srcContext = { ...sideContext(sideFlags(o, 'src'), 'src', retry), ...registries };
    const destContext = { ...sideContext(sideFlags(o, 'dest'), 'dest', retry), ...registries };
    const srcRef = parseImageName(source);
    const destRef = parseImageName(destination);
    const layers = compressionFlags(o, destRef.transport);
    if (o.additionalTag?.length && !(destRef instanceof DockerReference)) {
      throw new UnsupportedError(`--additional-tag is supported for docker:// destinations only (${destRef.transport}: has no further tags)`);
    }
    const policy = o.policy ? await (await import('../../policy/parse.js')).loadPolicy(o.policy) : undefined;
    // The key is unlocked and the destination checked before anything is copied.
    const signer = o.signBy
      ? await (await import('./gpg-options.js')).copySigner(destRef, o.signBy, {
          keyFile: o.signByKeyFile,
          passphraseFile: o.signPassphraseFile,
          identity: o.signIdentity,
          context: destContext,
        })
      : undefined;
    const progress = createProgress(o.quiet ? 'none' : (o.progress ?? 'auto'));
    const signal = signalOnInterrupt();
    try {
      const result = await copyReference(srcRef, destRef, {
        all,
        platforms: o.platform?.map(parsePlatform),
        preserveDigests: o.preserveDigests,
        format: o.format as 'oci' | 'v2s2' | undefined,
        jobs: o.jobs,
        signal,
        policy,
        signatures: o.removeSignatures ? 'remove' : 'copy',
        onProgress: progress.listener,
        ...(retry ? { retry } : {}),
        ...layers,
        srcContext,
        destContext,
      });
      if (o.additionalTag?.length) await addTags(destRef, destContext, result, o.additionalTag, signal);
      progress.done();
      if (signer) await signer.sign(result.digest, signal);
      if (o.digestfile) await writeFile(o.digestfile, result.digest);
      if (!o.quiet && o.progress === 'json') {
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
