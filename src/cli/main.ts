import { Command, CommanderError } from 'commander';
import { StevedoreError } from '../util/errors.js';
import { setLogLevel } from '../util/log.js';
import { registerController } from './commands/controller.js';
import { registerCopy } from './commands/copy.js';
import { registerDelete } from './commands/delete.js';
import { registerImport } from './commands/import.js';
import { registerInspect } from './commands/inspect.js';
import { registerListTags } from './commands/list-tags.js';
import { registerLogin } from './commands/login.js';
import { registerRun } from './commands/run.js';
import { registerSync } from './commands/sync.js';

export const VERSION = '0.1.0';

/** Exit codes as Podman's: 125 for an error of the tool itself (bad flag, failed copy). */
export const EXIT_TOOL_ERROR = 125;

export function buildProgram(): Command {
  const program = new Command('stevedore')
    .description('Build, move and run OCI images: the Podman / Buildah / Skopeo toolbox, with or without Kubernetes')
    .version(VERSION)
    .option('--log-level <level>', 'structured log level on stderr (trace, debug, info, warn, error)', 'warn')
    .hook('preAction', (cmd) => setLogLevel(cmd.opts().logLevel as string))
    .showHelpAfterError()
    .exitOverride();
  registerInspect(program);
  registerCopy(program);
  registerSync(program);
  registerListTags(program);
  registerDelete(program);
  registerLogin(program);
  registerImport(program);
  registerController(program);
  registerRun(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
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

/** Resolves once everything written to the stream so far has been handed to the OS. */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) return resolve();
    // A reader that went away (EPIPE, as with `| head`) is not our error.
    stream.on('error', () => resolve());
    stream.write('', () => resolve());
  });
}
