import { spawn } from 'node:child_process';
import { inUserNamespace } from './cgroups.js';
import { rootlessMappings } from './idmap.js';

/** Set in the re-executed child so it never re-executes again. */
export const REEXEC_ENV = '_STEVEDORE_USERNS';

/** Whether this process must move into a user namespace before it can unpack and run images. */
export function needsUserNamespace(env: NodeJS.ProcessEnv = process.env): boolean {
  return process.geteuid?.() !== 0 && !inUserNamespace() && env[REEXEC_ENV] !== '1';
}

/**
 * The command that re-executes this process as root of a new user namespace holding the caller's
 * whole subordinate range, as `buildah unshare` does: the caller is root in it, its subuids and
 * subgids are 1..N, and it has a mount namespace of its own for overlay mounts.
 */
export function reexecCommand(execPath: string, execArgv: readonly string[], argv: readonly string[]): { cmd: string; args: string[] } {
  return {
    cmd: 'unshare',
    args: ['--user', '--map-root-user', '--map-auto', '--mount', '--propagation', 'private', '--', execPath, ...execArgv, ...argv.slice(1)],
  };
}

/**
 * Re-runs the current command inside a user namespace and resolves with its exit status. Fails
 * first (with the file and user named) when the caller has no subordinate ids.
 */
export async function reexecInUserNamespace(): Promise<number> {
  rootlessMappings(); // throws NO_SUBIDS with a clear message when /etc/subuid has nothing for us
  const { cmd, args } = reexecCommand(process.execPath, process.execArgv, process.argv);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: 'inherit', env: { ...process.env, [REEXEC_ENV]: '1' } });
    child.once('error', reject);
    child.once('close', (code, signal) => resolve(code ?? (signal ? 128 + 9 : 125)));
  });
}
