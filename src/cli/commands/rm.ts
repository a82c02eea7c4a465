import type { Command } from 'commander';
import { findContainer, removeContainer } from '../../runtime/containers.js';
import { ImageStore } from '../../runtime/store/index.js';

/** `stevedore rm CONTAINER...`: removes exited containers (bundle, upper dir, log). */
export function registerRm(program: Command): void {
  program
    .command('rm')
    .description('remove exited containers')
    .argument('<containers...>', 'names or ids (prefixes)')
    .option('--root <dir>', 'store root')
    .action(async (refs: string[], o: { root?: string }) => {
      const store = await ImageStore.open(o.root);
      for (const ref of refs) {
        const rec = await findContainer(store, ref);
        await removeContainer(store, rec);
        process.stdout.write(`${rec.id}\n`);
      }
    });
}
