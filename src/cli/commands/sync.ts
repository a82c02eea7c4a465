import type { Command } from 'commander';
import type { SyncRepoSpec } from '../../copy/sync-config.js';
import { DEFAULT_PARALLEL_IMAGES, sync, type SyncItem, type SyncTarget } from '../../copy/sync.js';
import { parsePlatform } from '../../oci/platform.js';
import { parseReference } from '../../oci/reference.js';
import { InvalidInputError, StevedoreError } from '../../util/errors.js';
import { collect, contextFrom, parseBool, parsePositiveInt } from '../options.js';
import { signalOnInterrupt } from '../signals.js';
import { addRetryOptions, retryPolicy, type RetryFlags } from '../transfer-options.js';

interface SyncFlags extends RetryFlags {
  src: string;
  dest: string;
  all?: boolean;
  platform?: string[];
  keepGoing?: boolean;
  dryRun?: boolean;
  prune?: boolean;
  jobs?: number;
  parallel?: number;
  srcCreds?: string;
  destCreds?: string;
  srcTlsVerify?: boolean;
  destTlsVerify?: boolean;
  authfile?: string;
  format?: string;
  output?: 'text' | 'json';
  policy?: string;
  removeSignatures?: boolean;
}

function sourceSpecs(kind: string, source: string, o: SyncFlags): Promise<SyncRepoSpec[]> | SyncRepoSpec[] {
  // The YAML parser (slow to load) only for a YAML source.
  if (kind === 'yaml') return import('../../copy/sync-config.js').then((m) => m.loadSyncConfig(source));
  if (kind === 'docker') {
    const ref = parseReference(source.replace(/^docker:\/\//, ''));
    const ctx = contextFrom({ creds: o.srcCreds, tlsVerify: o.srcTlsVerify });
    return [{ registry: ref.registry, repository: ref.repository, tags: ref.digest ? [ref.digest] : ref.tag ? [ref.tag] : [], credentials: ctx.credentials, tlsVerify: ctx.tlsVerify }];
  }
  throw new InvalidInputError(`--src must be yaml or docker, got "${kind}"`);
}

function target(kind: string, destination: string, o: SyncFlags): SyncTarget {
  if (kind === 'docker') {
    const d = destination.replace(/^docker:\/\//, '').replace(/\/+$/, '');
    const slash = d.indexOf('/');
    const host = slash < 0 ? d : d.slice(0, slash);
    const prefix = slash < 0 ? '' : d.slice(slash + 1);
    // Validate host and prefix with the reference grammar.
    parseReference(`${host}/${prefix || 'x'}`);
    return { kind: 'registry', registry: host, prefix, context: contextFrom({ creds: o.destCreds, tlsVerify: o.destTlsVerify, authfile: o.authfile }) };
  }
  if (kind === 'oci') return { kind: 'layout', dir: destination.replace(/^oci:/, '') };
  throw new InvalidInputError(`--dest must be docker or oci, got "${kind}"`);
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
    .description('mirror tag sets from a YAML config or a repository to a registry or OCI layouts, skipping unchanged tags')
    .argument('<source>', 'YAML file (--src yaml) or registry/repository[:tag] (--src docker)')
    .argument('<destination>', 'registry[/prefix] (--dest docker) or a directory (--dest oci)')
    .requiredOption('--src <yaml|docker>', 'what the source names')
    .requiredOption('--dest <docker|oci>', 'what the destination names')
    .option('--platform <os/arch[/variant]>', 'copy only these platforms of indexes (default: all, digests preserved)', collect)
    .option('--keep-going', 'go on after a failed image and report it')
    .option('--dry-run', 'report what would be copied or pruned, change nothing')
    .option('--prune', 'delete destination tags the source no longer has')
    .option('-j, --jobs <n>', 'blobs copied in parallel per image', parsePositiveInt, 6)
    .option('--parallel <n>', 'images checked and synced in parallel', parsePositiveInt, DEFAULT_PARALLEL_IMAGES)
    .option('--src-creds <user:password>', 'credentials for source registries (the YAML may carry its own)')
    .option('--dest-creds <user:password>', 'credentials for the destination registry')
    .option('--src-tls-verify <bool>', 'require HTTPS for sources', parseBool)
    .option('--dest-tls-verify <bool>', 'require HTTPS for the destination', parseBool)
    .option('--authfile <path>', 'auth file for both sides')
    .option('-f, --format <oci|v2s2>', 'manifest format at the destination')
    .option('-o, --output <text|json>', 'per-image report format', 'text')
    .option('--policy <file>', 'containers-policy.json every copied image must satisfy (a refused image fails and is not written)')
    .option('--remove-signatures', 'do not carry cosign signatures, attestations, SBOMs and referrers along');
  addRetryOptions(cmd).action(async (source: string, destination: string, o: SyncFlags) => {
      const specs = await sourceSpecs(o.src, source, o);
      const policy = o.policy ? await (await import('../../policy/parse.js')).loadPolicy(o.policy) : undefined;
      const signal = signalOnInterrupt();
      const json = o.output === 'json';
      const retry = retryPolicy(o);
      const to = target(o.dest, destination, o);
      if (retry && to.kind === 'registry') to.context = { ...(to.context ?? {}), retry };
      const report = await sync(specs, to, {
        ...(retry ? { retry } : {}),
        platforms: o.platform?.map(parsePlatform),
        keepGoing: o.keepGoing,
        dryRun: o.dryRun,
        prune: o.prune,
        jobs: o.jobs,
        parallelImages: o.parallel,
        format: o.format as 'oci' | 'v2s2' | undefined,
        signal,
        sourceContext: { ...contextFrom({ creds: o.srcCreds, tlsVerify: o.srcTlsVerify, authfile: o.authfile }), ...(retry ? { retry } : {}) },
        policy,
        signatures: o.removeSignatures ? 'remove' : 'copy',
        onItem: (item) => printItem(item, json),
      });
      const summary = {
        copied: report.copied,
        skipped: report.skipped,
        failed: report.failed,
        pruned: report.pruned,
        ...(o.dryRun ? { wouldCopy: report.wouldCopy, wouldPrune: report.wouldPrune } : {}),
      };
      if (json) process.stdout.write(JSON.stringify({ summary }) + '\n');
      else if (o.dryRun) process.stderr.write(`Sync (dry run): ${report.wouldCopy} would be copied, ${summary.skipped} unchanged, ${summary.failed} failed, ${report.wouldPrune} would be pruned\n`);
      else process.stderr.write(`Sync: ${summary.copied} copied, ${summary.skipped} unchanged, ${summary.failed} failed, ${summary.pruned} pruned\n`);
      if (report.failed > 0) throw new StevedoreError('SYNC_PARTIAL', `${report.failed} image(s) failed to sync`);
    });
}
