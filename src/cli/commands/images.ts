import type { Command } from 'commander';
import { ImageStore } from '../../runtime/store/index.js';

interface ImagesFlags {
  root?: string;
  quiet?: boolean;
  format?: string;
}

/** `stevedore images`: the images of the local store, as `podman images` lists them. */
export function registerImages(program: Command): void {
  program
    .command('images')
    .description('list the images in the local store')
    .option('-q, --quiet', 'print only digests')
    .option('--format <table|json>', 'output format', 'table')
    .option('--root <dir>', 'store root (default: $STEVEDORE_ROOT, /var/lib/stevedore for root, else $XDG_DATA_HOME/stevedore)')
    .action(async (o: ImagesFlags) => {
      const store = await ImageStore.open(o.root);
      const images = await store.list();
      if (o.format === 'json') {
        process.stdout.write(`${JSON.stringify(images, null, 2)}\n`);
        return;
      }
      if (o.quiet) {
        for (const i of images) process.stdout.write(`${i.digest}\n`);
        return;
      }
      const rows = images.map((i) => {
        const colon = i.name.lastIndexOf(':');
        const at = i.name.indexOf('@');
        const [repo, tag] =
          at >= 0 ? [i.name.slice(0, at), '<none>'] : colon > i.name.lastIndexOf('/') ? [i.name.slice(0, colon), i.name.slice(colon + 1)] : [i.name, '<none>'];
        return [repo, tag, i.digest.replace(/^sha256:/, '').slice(0, 12)];
      });
      const header = ['REPOSITORY', 'TAG', 'DIGEST'];
      const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
      for (const r of [header, ...rows])
        process.stdout.write(
          `${r
            .map((v, c) => v.padEnd(widths[c]!))
            .join('  ')
            .trimEnd()}\n`,
        );
    });
}
