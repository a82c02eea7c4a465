import type { Command } from 'commander';
import { ImageStore } from '../../runtime/store/index.js';
import { tagImage } from '../../runtime/store/image-verbs.js';

/** `stevedore tag IMAGE NAME...`: as `podman tag`, more names for a stored image; prints nothing. */
export function registerTag(program: Command): void {
  program
    .command('tag')
    .description('add names to an image in the local store (as podman tag)')
    .argument('<image>', 'a stored image')
    .argument('<names...>', 'new names')
    .option('--root <dir>', 'store root')
    .action(async (image: string, names: string[], o: { root?: string }) => {
      const store = await ImageStore.open(o.root);
      for (const n of names) await tagImage(store, image, n);
    });
}
