import type { Command } from 'commander';
import { ImageStore } from '../../runtime/store/index.js';
import { saveImage } from '../../runtime/store/image-verbs.js';
import { InvalidInputError } from '../../util/errors.js';
import { signalOnInterrupt } from '../signals.js';

/** `stevedore save -o FILE IMAGE`: as `podman save`, a docker-archive (default) or oci-archive. */
export function registerSave(program: Command): void {
  program
    .command('save')
    .description('write an image of the local store to an archive (as podman save)')
    .argument('<image>', 'a stored image')
    .requiredOption('-o, --output <file>', 'archive to write')
    .option('--format <docker-archive|oci-archive>', 'archive format', 'docker-archive')
    .option('--root <dir>', 'store root')
    .action(async (image: string, o: { output: string; format: string; root?: string }) => {
      if (o.format !== 'docker-archive' && o.format !== 'oci-archive')
        throw new InvalidInputError(`--format must be docker-archive or oci-archive, got "${o.format}"`);
      const store = await ImageStore.open(o.root);
      await saveImage(store, image, o.output, o.format, { signal: signalOnInterrupt() });
    });
}
