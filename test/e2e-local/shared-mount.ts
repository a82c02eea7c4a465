/**
 * The documented fallback for the agent on a host whose / is a private mount (no systemd): the
 * agent's store must be on a shared mount for mountPropagation: Bidirectional, so it is made a
 * bind mount of itself and marked shared (`mount --bind D D && mount --make-shared D`), as
 * docs/real-node.md tells operators of such hosts to do once per boot.
 */
import { mkdir } from 'node:fs/promises';
import { runChecked, runCommand } from '../../hack/lib/harness/procs.js';

export async function makeSharedMount(dir: string): Promise<() => Promise<void>> {
  await mkdir(dir, { recursive: true });
  await runChecked('mount', ['--bind', dir, dir]);
  await runChecked('mount', ['--make-shared', dir]);
  return async () => {
    // Already gone when the node's cleanup unmounted everything under its directory.
    await runCommand('umount', ['-l', dir]);
  };
}
