import type { Command } from 'commander';
import { listContainers, snapshotsInUse } from '../../runtime/containers.js';
import { ImageStore, normaliseImageName, pruneStore } from '../../runtime/store/index.js';
import { InvalidInputError, NotFoundError } from '../../util/errors.js';

/** `stevedore rmi IMAGE...` and `stevedore prune`: untag images, then reclaim unused content. */
export function registerRmi(program: Command): void {
  program
    .command('rmi')
    .description('remove images from the local store (content is reclaimed by prune)')
    .argument('<images...>', 'image names as listed by `images`')
    .option('-f, --force', 'remove even when containers were made from the image')
    .option('--root <dir>', 'store root')
    .action(async (names: string[], o: { force?: boolean; root?: string }) => {
      const store = await ImageStore.open(o.root);
      const containers = await listContainers(store);
      for (const name of names) {
        const storeName = normaliseImageName(name).storeName;
        const users = containers.filter((c) => c.image === storeName);
        if (users.length > 0 && !o.force) {
          throw new InvalidInputError(`image ${storeName} is in use by container(s) ${users.map((c) => c.name).join(', ')}; remove them or use --force`);
        }
        if (!(await store.removeImage(name))) throw new NotFoundError(`no image ${storeName} in the local store`);
        process.stdout.write(`Untagged: ${storeName}\n`);
      }
    });
  program
    .command('prune')
    .description('remove blobs, snapshots and unpack leftovers that no image or container uses')
    .option('--grace <seconds>', 'keep anything younger than this (protects pulls running meanwhile)', '3600')
    .option('--root <dir>', 'store root')
    .action(async (o: { grace: string; root?: string }) => {
      const graceSeconds = Number(o.grace);
      if (!(graceSeconds >= 0)) throw new InvalidInputError(`--grace must be a number of seconds, got "${o.grace}"`);
      const store = await ImageStore.open(o.root);
      const { layersInUse } = await import('../../build/working/records.js');
      const r = await pruneStore(store, { graceMs: graceSeconds * 1000, inUseSnapshots: await snapshotsInUse(store), inUseBlobs: await layersInUse(store) });
      process.stdout.write(`Removed ${r.blobs} blobs, ${r.snapshots} snapshots, ${r.temps} unpack leftovers; ${r.bytes} bytes reclaimed\n`);
    });
}
