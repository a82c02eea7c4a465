import { stat, writeFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { DEFAULT_COPY_JOBS } from '../../copy/image.js';
import { syncFromArchive, syncFromLayout, syncToArchives } from '../../copy/sync-layout.js';
import type { Command } from 'commander';
import type { SyncRepoSpec } from '../../copy/sync-config.js';
import { DEFAULT_PARALLEL_IMAGES, emptyReport, recordItem, sync, type SyncItem, type SyncNaming, type SyncTarget } from '../../copy/sync.js';
import { parsePlatform } from '../../oci/platform.js';
import { parseReference } from '../../oci/reference.js';
import { InvalidInputError, StevedoreError, UnsupportedError } from '../../util/errors.js';
import { collect, parseBool, parsePositiveInt } from '../options.js';
import { signalOnInterrupt } from '../signals.js';
import { compressionFlags } from './copy.js';
import { addRetryOptions, addSideOptions, retryPolicy, sideContext, sideFlags, type RetryFlags } from '../transfer-options.js';

interface SyncFlags extends RetryFlags {
  src: string;
  dest: string;
  all?: boolean;
  scoped?: boolean;
  platform?: string[];
  keepGoing?: boolean;
  dryRun?: boolean;
  prune?: boolean;
  jobs?: number;
  parallel?: number;
  authfile?: string;
  format?: string;
  output?: 'text' | 'json';
  quiet?: boolean;
  digestfile?: string;
  preserveDigests?: boolean;
  appendSuffix?: string;
  policy?: string;
  removeSignatures?: boolean;
  destCompressFormat?: string;
  destCompressLevel?: string;
}

function sourceSpecs(kind: string, source: string): Promise<SyncRepoSpec[]> | SyncRepoSpec[] {
  // The YAML parser (~40 ms to load) only for a YAML source.
  if (kind === 'yaml') return import('../../copy/sync-config.js').then((m) => m.loadSyncConfig(source));
  if (kind === 'docker') {
    const ref = parseReference(source.replace(/^docker:\/\//, ''));
    return [{ registry: ref.registry, repository: ref.repository, tags: ref.digest ? [ref.digest] : ref.tag ? [ref.tag] : [] }];
  }
  if (kind === 'dir') {
    throw new UnsupportedError(
      '--src dir is not supported: export with --dest oci (one OCI layout per repository) and import with --src oci, or copy each dir: image with "stevedore copy dir:PATH docker://..."',
    );
  }
  throw new InvalidInputError(`--src must be docker, yaml or oci, got "${kind}"`);
}

function target(kind: string, destination: string, naming: SyncNaming): SyncTarget {
  if (kind === 'docker') {
    const d = destination.replace(/^docker:\/\//, '').replace(/\/+$/, '');
    const slash = d.indexOf('/');
    const host = slash < 0 ? d : d.slice(0, slash);
    const prefix = slash < 0 ? '' : d.slice(slash + 1);
    // Validate host and prefix with the reference grammar.
    parseReference(`${host}/${prefix || 'x'}`);
    return { kind: 'registry', registry: host, prefix, naming };
  }
  if (kind === 'oci') return { kind: 'layout', dir: destination.replace(/^oci:/, ''), naming };
  // One OCI archive per repository (DIR/<name>.tar): see syncToArchives.
  if (kind === 'oci-archive') return { kind: 'layout', dir: destination.replace(/^oci-archive:/, ''), naming };
  if (kind === 'dir') return { kind: 'dir', dir: destination.replace(/^dir:/, ''), naming };
  throw new InvalidInputError(`--dest must be docker, oci, oci-archive or dir, got "${kind}"`);
}

function printItem(item: SyncItem, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify(item) + '\n');
    return;
  }
  const what = item.action.padEnd(11);
  const extra = item.error ? `: ${item.error}` : item.note ? `: ${item.note}` : item.digest ? ` ${item.digest.slice(0, 19)}` : '';
  process.stdout.write(`${what} ${item.source} -> ${item.destination}${extra}\n`);
}

export function registerSync(program: Command): void {
  const cmd = program
    .command('sync')
    .description('mirror tag sets from a YAML config or a repository to a registry, OCI layouts or directories, skipping unchanged tags')
    .argument('<source>', 'YAML file (--src yaml), registry/repository[:tag] (--src docker), or an OCI layout directory (--src oci)')
    .argument('<destination>', 'registry[/prefix] (--dest docker), or a directory (--dest oci, --dest oci-archive: DIR/<name>.tar, --dest dir)')
    .requiredOption('-s, --src <yaml|docker|oci>', 'what the source names')
    .requiredOption('-d, --dest <docker|oci|oci-archive|dir>', 'what the destination names')
    .option('-a, --all', "copy every platform of an index, keeping its digest (the default; skopeo copies the host's platform without it)")
    .option('--platform <os/arch[/variant]>', 'copy only these platforms of indexes (default: all, digests preserved)', collect)
    .option('--scoped', 'name destinations by the full source (registry/path/name), as skopeo --scoped; default: the last path element')
    .option('--keep-going', 'go on after a failed image and report it')
    .option('--dry-run', 'report what would be copied or pruned, change nothing')
    .option('--prune', 'delete destination tags the source no longer has')
    .option('--preserve-digests', 'fail an image rather than change its digest (a --platform subset or --format change would)')
    .option('-j, --jobs <n>', 'blobs copied in parallel per image', parsePositiveInt, DEFAULT_COPY_JOBS)
    .option('--parallel <n>', 'images checked and synced in parallel', parsePositiveInt, DEFAULT_PARALLEL_IMAGES)
    .option('--authfile <path>', 'auth file for both sides')
    .option('-f, --format <oci|v2s2>', 'manifest format at the destination')
    .option('-o, --output <text|json>', 'per-image report format', 'text')
    .option('-q, --quiet', 'print nothing but errors')
    .option('--digestfile <path>', 'write "<digest> <destination>" for every image synced (copied or unchanged) to this file')
    .option('--append-suffix <suffix>', 'refused: tags are mirrored under their own names')
    .option('--policy <file>', 'containers-policy.json every copied image must satisfy (a refused image fails and is not written)')
    .option('--remove-signatures', 'do not carry cosign signatures, attestations, SBOMs and referrers along')
    .option(
      '--dest-compress-format <gzip|zstd|zstd:chunked>',
      'convert every layer to this compression (digests change; a re-run still skips unchanged images)',
    )
    .option('--dest-compress-level <n>', 'compression level for --dest-compress-format: gzip 1-9, zstd 1-22');
  addSideOptions(cmd, 'src', parseBool);
  addSideOptions(cmd, 'dest', parseBool);
  addRetryOptions(cmd).action(async (source: string, destination: string, o: SyncFlags) => {
    if (o.all && o.platform?.length) throw new InvalidInputError('--all and --platform contradict each other: --all copies every platform');
    if (o.appendSuffix !== undefined)
      throw new UnsupportedError('--append-suffix is not supported: stevedore mirrors tags under their own names (rename the destination repository instead)');
    if (o.format && o.format !== 'oci' && o.format !== 'v2s2') throw new InvalidInputError(`--format must be oci or v2s2, got "${o.format}"`);
    const compression = compressionFlags(o, o.dest);
    if (compression.compression && o.preserveDigests)
      throw new InvalidInputError('--preserve-digests and --dest-compress-format contradict each other: a converted layer has a new digest');
    const retry = retryPolicy(o);
    const srcContext = sideContext(sideFlags(o, 'src'), 'src', retry);
    const destContext = sideContext(sideFlags(o, 'dest'), 'dest', retry);
    const to = target(o.dest, destination, o.scoped ? 'scoped' : 'last');
    // --src oci: one OCI layout (as --dest oci writes them) imported into DEST/<its directory name>.
    const layoutDir = o.src === 'oci' ? resolve(source.replace(/^oci(-archive)?:/, '')) : undefined;
    if (layoutDir && to.kind !== 'registry') throw new InvalidInputError('--src oci imports into a registry: use --dest docker');
    if (layoutDir && o.prune) throw new InvalidInputError('--prune is not supported with --src oci (a layout has no history of what it exported)');
    const specs = layoutDir ? [] : await sourceSpecs(o.src, source);
    if (to.kind === 'registry') to.context = destContext;
    const policy = o.policy ? await (await import('../../policy/parse.js')).loadPolicy(o.policy) : undefined;
    const signal = signalOnInterrupt();
    const json = o.output === 'json';
    // Counted here as items arrive, so a sync stopped by its first failure still gets its summary.
    const seen = emptyReport();
    let failure: unknown;
    const onItem = (item: SyncItem) => {
      recordItem(seen, item);
      if (!o.quiet || item.action === 'failed') printItem(item, json);
    };
    try {
      if (layoutDir && to.kind === 'registry') {
        // An OCI archive (a tar of such a layout) is extracted first: syncFromArchive.
        const archive = (await stat(layoutDir).catch(() => undefined))?.isFile() ? layoutDir : undefined;
        const name = archive ? basename(archive).replace(/\.(tar|oci)$/, '') : basename(layoutDir);
        const repository = to.prefix ? `${to.prefix}/${name}` : name;
        await (archive ? syncFromArchive : syncFromLayout)(
          layoutDir,
          { tags: [] },
          { registry: to.registry, repository, context: destContext },
          {
            platforms: o.platform?.map(parsePlatform),
            dryRun: o.dryRun,
            ...(policy ? { policy } : {}),
            parallelImages: o.parallel,
            signal,
            onItem,
          },
        );
      } else {
        const syncOpts = {
          ...(retry ? { retry } : {}),
          platforms: o.platform?.map(parsePlatform),
          keepGoing: o.keepGoing,
          dryRun: o.dryRun,
          prune: o.prune,
          preserveDigests: o.preserveDigests,
          jobs: o.jobs,
          parallelImages: o.parallel,
          format: o.format as 'oci' | 'v2s2' | undefined,
          ...compression,
          signal,
          sourceContext: srcContext,
          policy,
          signatures: o.removeSignatures ? ('remove' as const) : ('copy' as const),
          onItem,
        };
        if (o.dest === 'oci-archive' && to.kind === 'layout') {
          const r = await syncToArchives(specs, { dir: to.dir, ...(to.naming ? { naming: to.naming } : {}) }, syncOpts);
          if (!o.quiet && !json) for (const file of r.archives) process.stderr.write(`Wrote ${file}\n`);
        } else await sync(specs, to, syncOpts);
      }
    } catch (err) {
      failure = err;
    }
    if (o.digestfile) {
      const lines = seen.items
        .filter((i) => (i.action === 'copied' || i.action === 'skipped') && i.digest && !i.note)
        .map((i) => `${i.digest} ${i.destination}\n`);
      await writeFile(o.digestfile, lines.join(''));
    }
    const summary = {
      copied: seen.copied,
      skipped: seen.skipped,
      failed: seen.failed,
      pruned: seen.pruned,
      ...(o.dryRun ? { wouldCopy: seen.wouldCopy, wouldPrune: seen.wouldPrune } : {}),
    };
    if (json) process.stdout.write(JSON.stringify({ summary }) + '\n');
    else if (o.quiet) {
      // Nothing but errors.
    } else if (o.dryRun)
      process.stderr.write(
        `Sync (dry run): ${seen.wouldCopy} would be copied, ${summary.skipped} unchanged, ${summary.failed} failed, ${seen.wouldPrune} would be pruned\n`,
      );
    else process.stderr.write(`Sync: ${summary.copied} copied, ${summary.skipped} unchanged, ${summary.failed} failed, ${summary.pruned} pruned\n`);
    if (failure !== undefined) {
      // A failed image was printed above as its item: say only that the sync stopped, not the error again.
      if (seen.failed > 0) throw new StevedoreError('SYNC_FAILED', `sync stopped after a failed image (see above; --keep-going goes on)`, { cause: failure });
      throw failure;
    }
    if (seen.failed > 0) throw new StevedoreError('SYNC_PARTIAL', `${seen.failed} image(s) failed to sync`);
  });
}
