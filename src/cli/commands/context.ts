import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { errorMessage, InvalidInputError } from '../../util/errors.js';
import { addSourceOptions, contextFrom } from '../options.js';

interface SourceFlags {
  creds?: string;
  tlsVerify?: boolean;
  authfile?: string;
  resultFile?: string;
}

/**
 * Runs one source step; the outcome goes to --result-file (the build Pod's termination message) as
 * `{"sourceCommit": …}` or `{"error": {"reason": "SourceUnavailable", …}}`, and errors still exit 125.
 */
async function step(resultFile: string | undefined, reason: string, fn: () => Promise<string | undefined>): Promise<void> {
  const { writeStepResult } = await import('../../build/remote/result-file.js');
  try {
    const commit = await fn();
    await writeStepResult(resultFile, { sourceCommit: commit ?? '' });
  } catch (err) {
    await writeStepResult(resultFile, { error: { reason, message: errorMessage(err) } }).catch(() => undefined);
    throw err;
  }
}

export function registerContext(program: Command): void {
  const context = program
    .command('context')
    .description('build contexts: push a directory as an OCI artifact, or fetch a context (artifact, Git, inline) into a directory');

  addSourceOptions(
    context
      .command('push')
      .description('pack DIR (honouring .containerignore) and push it as a build context artifact; prints registry/repo@digest')
      .argument('<dir>', 'context directory')
      .argument('<ref>', 'registry/repo[:tag] to push to')
      .option('-f, --file <path>', 'Containerfile (relative to DIR), always included and used to find <name>.containerignore'),
  ).action(async (dir: string, ref: string, o: SourceFlags & { file?: string }) => {
    const { pushContext } = await import('../../build/remote/artifact.js');
    const { loadContextIgnore } = await import('../../build/remote/ignore.js');
    const ignore = await loadContextIgnore(dir, o.file);
    const pushed = await pushContext(dir, ref, { ctx: contextFrom(o), ignore, keep: o.file ? [o.file] : [] });
    process.stdout.write(`${pushed.reference}\n`);
  });

  addSourceOptions(
    context
      .command('fetch')
      .description('fetch a build context artifact and extract it into DIR')
      .argument('<ref>', 'registry/repo:tag or @digest of the artifact')
      .argument('<dir>', 'directory to extract into (created if missing)')
      .option('--result-file <path>', 'write {"sourceCommit": artifact digest} or {"error": …} here'),
  ).action(async (ref: string, dir: string, o: SourceFlags) => {
    await step(o.resultFile, 'SourceUnavailable', async () => {
      const { fetchContext } = await import('../../build/remote/artifact.js');
      await mkdir(dir, { recursive: true });
      const got = await fetchContext(ref, dir, { ctx: contextFrom(o) });
      process.stderr.write(`fetched ${ref} (${got.digest}): ${got.entries} entries\n`);
      return got.digest;
    });
  });

  context
    .command('git')
    .description('shallow-fetch one revision of a Git repository into DIR')
    .argument('<url>', 'clone URL')
    .argument('<dir>', 'directory to fetch into (created if missing)')
    .option('--revision <rev>', 'branch, tag or commit (default: the remote HEAD)')
    .option('--credentials-dir <dir>', 'directory with username/password or ssh-privatekey/known_hosts files (a mounted Secret)')
    .option('--result-file <path>', 'write {"sourceCommit": sha} or {"error": …} here')
    .action(async (url: string, dir: string, o: { revision?: string; credentialsDir?: string; resultFile?: string }) => {
      await step(o.resultFile, 'SourceUnavailable', async () => {
        const { fetchGit } = await import('../../build/remote/git.js');
        await mkdir(dir, { recursive: true });
        const got = await fetchGit(url, o.revision, dir, { credentialsDir: o.credentialsDir });
        process.stderr.write(`fetched ${url} at ${got.commit}\n`);
        return got.commit;
      });
    });

  context
    .command('inline')
    .description('write a Containerfile given in $STEVEDORE_CONTAINERFILE into DIR (an otherwise empty context)')
    .argument('<dir>', 'context directory (created if missing)')
    .option('-f, --file <name>', 'file name to write', 'Containerfile')
    .option('--result-file <path>', 'write {"sourceCommit": ""} or {"error": …} here')
    .action(async (dir: string, o: { file: string; resultFile?: string }) => {
      await step(o.resultFile, 'InvalidSpec', async () => {
        const text = process.env.STEVEDORE_CONTAINERFILE;
        if (!text) throw new InvalidInputError('$STEVEDORE_CONTAINERFILE is empty: nothing to build');
        if (o.file.includes('/') || o.file.startsWith('.')) throw new InvalidInputError(`--file must be a plain file name, got "${o.file}"`);
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, o.file), text, { mode: 0o644 });
        return undefined;
      });
    });

  context
    .command('auth')
    .description('merge docker config files (mounted dockerconfigjson Secrets) into one auth file')
    .argument('<out>', 'auth file to write')
    .argument('<inputs...>', 'config files to merge; later ones win for the same registry')
    .action(async (out: string, inputs: string[]) => {
      const { mergeAuthFiles } = await import('../../build/remote/auth.js');
      const n = await mergeAuthFiles(out, inputs);
      process.stderr.write(`wrote ${out} with ${n} registries\n`);
    });
}

/** Flags of `stevedore build --remote` (registered by the build verb). */
export interface RemoteBuildFlags {
  file?: string;
  tag?: string[];
  target?: string;
  buildArg?: string[];
  platform?: string;
  tlsVerify?: boolean;
  creds?: string;
  authfile?: string;
  kubeconfig?: string;
  namespace?: string;
  contextRepo?: string;
  pushSecret?: string;
  timeout?: string;
  quiet?: boolean;
}

/** `stevedore build --remote -t IMAGE [CONTEXT]`: exit 0 when the ImageBuild succeeds, 1 when it fails. */
export async function runRemoteBuild(context: string, o: RemoteBuildFlags): Promise<number> {
  const tags = o.tag ?? [];
  if (tags.length !== 1) throw new InvalidInputError('--remote needs exactly one -t/--tag: the registry image the cluster pushes');
  if (context === '-' || /\.(tar|tar\.gz|tgz)$/.test(context)) throw new InvalidInputError('--remote takes a context directory');
  const { KubeConfig } = await import('@kubernetes/client-node');
  const { remoteBuild } = await import('../../controllers/imagebuild-remote.js');
  const { signalOnInterrupt } = await import('../signals.js');
  const kubeConfig = new KubeConfig();
  if (o.kubeconfig) kubeConfig.loadFromFile(o.kubeconfig);
  else kubeConfig.loadFromDefault();
  const namespace = o.namespace ?? kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace ?? 'default';
  const buildArgs: Record<string, string> = {};
  for (const a of o.buildArg ?? []) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new InvalidInputError(`--build-arg ${a}: expected KEY=VALUE`);
    buildArgs[a.slice(0, eq)] = a.slice(eq + 1);
  }
  const res = await remoteBuild({
    contextDir: context,
    containerfile: o.file,
    image: tags[0]!,
    kubeConfig,
    namespace,
    contextRepository: o.contextRepo,
    buildArgs,
    target: o.target,
    platforms: o.platform ? o.platform.split(',') : undefined,
    timeout: o.timeout,
    pushSecret: o.pushSecret,
    insecure: o.tlsVerify === false,
    registry: contextFrom(o),
    print: (line) => {
      if (!o.quiet) process.stderr.write(`${line}\n`);
    },
    signal: signalOnInterrupt(),
  });
  if (res.ready && res.digest) {
    process.stdout.write(`${res.digest}\n`);
    return 0;
  }
  process.stderr.write(`Error: ImageBuild ${namespace}/${res.name} ${res.reason}: ${res.status?.failureDetails?.message ?? res.message}\n`);
  return 1;
}
