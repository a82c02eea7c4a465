import type { Command } from 'commander';
import { listContainers } from '../../runtime/containers.js';
import { ImageStore } from '../../runtime/store/index.js';

/** `stevedore ps [-a]`: containers of the local store, as `podman ps` lists them. */
export function registerPs(program: Command): void {
  program
    .command('ps')
    .description('list containers (running ones; all with -a)')
    .option('-a, --all', 'also list exited containers')
    .option('-q, --quiet', 'print only ids')
    .option('--format <table|json>', 'output format', 'table')
    .option('--root <dir>', 'store root')
    .action(async (o: { all?: boolean; quiet?: boolean; format?: string; root?: string }) => {
      const store = await ImageStore.open(o.root);
      const list = (await listContainers(store)).filter((c) => o.all || c.status === 'running');
      if (o.format === 'json') return void process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
      if (o.quiet) return void process.stdout.write(list.map((c) => `${c.id.slice(0, 12)}\n`).join(''));
      const rows = list.map((c) => [
        c.id.slice(0, 12),
        c.image,
        c.command.join(' ').slice(0, 30),
        c.status === 'running' ? 'Up' : `Exited (${c.exitCode ?? '?'})${c.reason && c.reason !== 'Completed' && c.reason !== 'Error' ? ` ${c.reason}` : ''}`,
        c.name,
      ]);
      const header = ['CONTAINER ID', 'IMAGE', 'COMMAND', 'STATUS', 'NAMES'];
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
      for (const r of [header, ...rows])
        process.stdout.write(
          `${r
            .map((v, i) => v.padEnd(widths[i]!))
            .join('  ')
            .trimEnd()}\n`,
        );
    });
}
