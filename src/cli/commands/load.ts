import type { Command } from 'commander';
import { ImageStore } from '../../runtime/store/index.js';
import { loadImage } from '../../runtime/store/image-verbs.js';
import { signalOnInterrupt } from '../signals.js';

/** `stevedore load -i FILE`: as `podman load`, stores an archive's image and prints `Loaded image: NAME`. */
export function registerLoad(program: Command): void {
  program
    .command('load')
    .description('store the image of a docker-archive or oci-archive (as podman load)')
    .requiredOption('-i, --input <file>', 'archive to read')
    .option('-q, --quiet', 'accepted for podman compatibility')
    .option('--root <dir>', 'store root')
    .action(async (o: { input: string; root?: string }) => {
      const store = await ImageStore.open(o.root);
      const img = await loadImage(store, o.input, { signal: signalOnInterrupt() });
      process.stdout.write(`Loaded image: ${img.name}\n`);
    });
}
