import { spawn } from 'node:child_process';
import { hasSubordinateIds } from './idmap.js';
import { defaultStoreRoot } from './store/paths.js';
import { rootLogger as log } from '../util/log.js';

/** Set in the re-executed child so it never re-executes again. */
export const REEXEC_ENV = '_STEVEDORE_USERNS';

/**
 * Whether this process must move into a user namespace before it can unpack and run images: any
 * non-root caller, also one already inside a user namespace (a build Pod with `hostUsers: false`
 * runs as uid 65532 there: not root of it, so runc and overlay mounts need a nested one).
 */
export function needsUserNamespace(env: NodeJS.ProcessEnv = process.env): boolean {
  return process.geteuid?.() !== 0 && env[REEXEC_ENV] !== '1';
}

/**
 * The command that re-executes this process as root of a new user namespace holding the caller's
 * whole subordinate range, as `buildah unshare` does: the caller is root in it, its subuids and
 * subgids are 1..N, and it has a mount namespace of its own for overlay mounts.
 */
export function reexecCommand(
  execPath: string,
  execArgv: readonly string[],
  argv: readonly string[],
  opts: { subordinateIds?: boolean } = {},
): { cmd: string; args: string[] } {
  const map = opts.subordinateIds === false ? ['--map-root-user'] : ['--map-root-user', '--map-auto'];
  return {
    cmd: 'unshare',
    args: ['--user', ...map, '--mount', '--propagation', 'private', '--', execPath, ...execArgv, ...argv.slice(1)],
  };
}

/**
 * Re-runs the current command inside a user namespace and resolves with its exit status. Without
 * subordinate ids (a Pod's uid has no /etc/subuid entry, and no setuid newuidmap may run there) the
 * namespace maps the caller alone: enough for images whose files are all root's, and every file
 * of the others ends up owned by the caller; a step that switches to another user fails.
 */
export async function reexecInUserNamespace(): Promise<number> {
  const subordinateIds = hasSubordinateIds();
  if (!subordinateIds) {
    log.warn(
      { uid: process.getuid?.() },
      "no subordinate ids in /etc/subuid and /etc/subgid for this user: containers get a single id (files owned by other users become the caller's, USER other than root fails)",
    );
  }
  const { cmd, args } = reexecCommand(process.execPath, process.execArgv, process.argv, { subordinateIds });
  return new Promise((resolve, reject) => {
    // The store stays the caller's: root of the namespace would otherwise pick /var/lib/stevedore.
    const env = { ...process.env, STEVEDORE_ROOT: defaultStoreRoot(), [REEXEC_ENV]: '1' };
    const child = spawn(cmd, args, { stdio: 'inherit', env });
    child.once('error', reject);
    child.once('close', (code, signal) => resolve(code ?? (signal ? 128 + 9 : 125)));
  });
}
