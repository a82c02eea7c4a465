import { Command, CommanderError } from 'commander';
import { StevedoreError } from '../util/errors.js';
import { setLogLevel } from '../util/log.js';
import { VERSION } from '../util/version.js';
import { EXIT_TOOL_ERROR, flushed } from './exit-codes.js';

type Register = (program: Command) => void;

/**
 * Each verb's module, loaded only when that verb runs: a command's start-up is part of its time
 * (a copy that finds every blob present does little work), and importing every verb's engine
 * (registry client, runtime, builder, Kubernetes client) cost more than the work itself
 * (test/cli/run-module-graph.test.ts keeps the heavy ones out; figures in docs/benchmarks.md).
 */
const VERBS: Record<string, () => Promise<Register>> = {
  inspect: async () => (await import('./commands/inspect.js')).registerInspect,
  copy: async () => (await import('./commands/copy.js')).registerCopy,
  sync: async () => (await import('./commands/sync.js')).registerSync,
  'list-tags': async () => (await import('./commands/list-tags.js')).registerListTags,
  delete: async () => (await import('./commands/delete.js')).registerDelete,
  login: async () => (await import('./commands/login.js')).registerLogin,
  import: async () => (await import('./commands/import.js')).registerImport,
  controller: async () => (await import('./commands/controller.js')).registerController,
  agent: async () => (await import('./commands/agent.js')).registerAgent,
  run: async () => (await import('./commands/run.js')).registerRun,
  images: async () => (await import('./commands/images.js')).registerImages,
  ps: async () => (await import('./commands/ps.js')).registerPs,
  logs: async () => (await import('./commands/logs.js')).registerLogs,
  rm: async () => (await import('./commands/rm.js')).registerRm,
  rmi: async () => (await import('./commands/rmi.js')).registerRmi,
  stop: async () => (await import('./commands/stop.js')).registerStop,
  kill: async () => (await import('./commands/stop.js')).registerKill,
  sbom: async () => (await import('./commands/sbom.js')).registerSbom,
  attest: async () => (await import('./commands/attest.js')).registerAttest,
  build: async () => (await import('./commands/build.js')).registerBuild,
  sign: async () => (await import('./commands/sign.js')).registerSign,
  verify: async () => (await import('./commands/verify.js')).registerVerify,
  'generate-key': async () => (await import('./commands/generate-key.js')).registerGenerateKey,
  context: async () => (await import('./commands/context.js')).registerContext,
  'standalone-sign': async () => (await import('./commands/standalone-sign.js')).registerStandaloneSign,
  'standalone-verify': async () => (await import('./commands/standalone-verify.js')).registerStandaloneVerify,
  image: async () => (await import('./commands/image-sign.js')).registerImage,
  manifest: async () => (await import('./commands/manifest.js')).registerManifest,
  buildah: async () => (await import('./commands/buildah.js')).registerBuildah,
  script: async () => (await import('./commands/script.js')).registerScript,
  pull: async () => (await import('./commands/pull.js')).registerPull,
  push: async () => (await import('./commands/push.js')).registerPush,
  tag: async () => (await import('./commands/tag.js')).registerTag,
  save: async () => (await import('./commands/save.js')).registerSave,
  load: async () => (await import('./commands/load.js')).registerLoad,
};
// Verbs registered by another verb's module.
const ALIASES: Record<string, string> = { bud: 'build', logout: 'login', prune: 'rmi', 'verify-attestation': 'attest' };

/**
 * The command tree. With `verb`, only that verb's module is loaded (the fast path of `main`);
 * without, every verb is (for help output and tests).
 */
export async function buildProgram(verb?: string): Promise<Command> {
  const program = new Command('stevedore')
    .description('Build, move and run OCI images: the Podman / Buildah / Skopeo toolbox, with or without Kubernetes')
    .version(VERSION)
    .option('--log-level <level>', 'structured log level on stderr (trace, debug, info, warn, error)', 'warn')
    .hook('preAction', (cmd) => setLogLevel(cmd.opts().logLevel as string))
    .showHelpAfterError()
    .exitOverride();
  const key = verb === undefined ? undefined : (ALIASES[verb] ?? verb);
  const loaders = key !== undefined && VERBS[key] ? [VERBS[key]] : Object.values(VERBS);
  for (const register of await Promise.all(loaders.map((load) => load()))) register(program);
  return program;
}

/** The verb of an argv (the first argument that is not a global option), if any. */
function verbOf(argv: string[]): string | undefined {
  const args = argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--log-level') i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

export async function main(argv: string[]): Promise<void> {
  try {
    const program = await buildProgram(verbOf(argv));
    await program.parseAsync(argv);
    process.exitCode = 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are not errors; a usage error is the tool's (125).
      process.exitCode = err.exitCode === 0 ? 0 : EXIT_TOOL_ERROR;
    } else {
      const code = err instanceof StevedoreError ? ` [${err.code}]` : '';
      process.stderr.write(`Error: ${(err as Error)?.message ?? String(err)}${code}\n`);
      process.exitCode = EXIT_TOOL_ERROR;
    }
  }
  // process.exit() drops whatever a piped stdout/stderr has not written yet (pipe writes are
  // asynchronous): `inspect --raw | sha256sum` used to get the first 64-128 KiB of a big manifest.
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  // Keep-alive sockets and timers must not hold a finished command open.
  setImmediate(() => process.exit(process.exitCode ?? 0)).unref();
}
