import type { Command } from 'commander';
import { findContainer } from '../../runtime/containers.js';
import { ContainerRunningError, removeContainer } from '../../runtime/lifecycle/remove.js';
import { ImageStore } from '../../runtime/store/index.js';
import { NotFoundError } from '../../util/errors.js';
import { exitWith } from '../exit-codes.js';
import { parseSeconds } from '../options.js';

/** podman rm's statuses: 1 when a container does not exist, 2 when it runs (and --force was not given). */
const EXIT_NO_SUCH_CONTAINER = 1;
const EXIT_CONTAINER_RUNNING = 2;

/**
 * `stevedore rm [-f] CONTAINER...`: removes containers (bundle, upper dir, log), printing each as
 * given. A running one is refused unless --force (then stopped first: SIGTERM, grace, SIGKILL).
 * Every container is tried; the status is the first failure's, as podman's.
 */
export function registerRm(program: Command): void {
  program
    .command('rm')
    .description('remove containers (a running one only with --force)')
    .argument('<containers...>', 'names or ids (prefixes)')
    .option('-f, --force', 'stop a running container first')
    .option('-t, --time <seconds>', 'grace period before SIGKILL with --force', parseSeconds, 10)
    .option('--root <dir>', 'store root')
    .action(async (refs: string[], o: { force?: boolean; time: number; root?: string }) => {
      const store = await ImageStore.open(o.root);
      let status = 0;
      for (const ref of refs) {
        try {
          const rec = await findContainer(store, ref);
          await removeContainer(store, rec.id, { force: o.force, graceMs: o.time * 1000 });
          process.stdout.write(`${ref}\n`);
        } catch (err) {
          if (err instanceof NotFoundError) {
            process.stderr.write(`Error: no container with name or ID "${ref}" found: no such container\n`);
            status ||= EXIT_NO_SUCH_CONTAINER;
          } else if (err instanceof ContainerRunningError) {
            process.stderr.write(`Error: ${err.message}\n`);
            status ||= EXIT_CONTAINER_RUNNING;
          } else throw err;
        }
      }
      // main() sets status 0 after an action that returns: end here with the first failure's.
      if (status !== 0) await exitWith(status);
    });
}
