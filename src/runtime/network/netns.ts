import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { NetworkSetupError } from './errors.js';

const run = promisify(execFile);

/**
 * A new, empty network namespace kept alive by a bind mount on `path` (as `ip netns add` does), in
 * the caller's mount namespace: the host's as root, the engine's own one rootless. Owned by the
 * caller's user namespace, so a container in that namespace may bind low ports and mount sysfs in it.
 */
export async function createNetns(path: string): Promise<void> {
  await writeFile(path, '', { flag: 'wx', mode: 0o644 });
  try {
    await run('unshare', [`--net=${path}`, 'true']);
  } catch (err) {
    await rm(path, { force: true });
    throw new NetworkSetupError(`creating a network namespace at ${path} failed: ${stderrOf(err)}`, { cause: err });
  }
}

/** Unmounts and deletes a namespace made by createNetns (its last user gone, the kernel frees it). */
export async function removeNetns(path: string): Promise<void> {
  await run('umount', ['--lazy', path]).catch(() => undefined);
  await rm(path, { force: true });
}

/** Runs `ip ARGS` inside the namespace at `path`. */
export async function ipInNetns(path: string, args: readonly string[]): Promise<void> {
  try {
    await run('nsenter', [`--net=${path}`, '--', 'ip', ...args]);
  } catch (err) {
    throw new NetworkSetupError(`ip ${args.join(' ')} in the container's network namespace failed: ${stderrOf(err)}`, { cause: err });
  }
}

export function stderrOf(err: unknown): string {
  const e = err as { stderr?: string; message?: string };
  return (e.stderr?.trim() || e.message || String(err))
    .split('\n')
    .filter((l) => !l.includes('syslog'))
    .join('; ');
}
