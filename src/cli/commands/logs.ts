import type { Command } from 'commander';
import { findContainer, readLogs } from '../../runtime/containers.js';
import { ImageStore } from '../../runtime/store/index.js';

/** `stevedore logs [-f] CONTAINER`: its output from the k8s-file log, stdout and stderr kept apart. */
export function registerLogs(program: Command): void {
  program
    .command('logs')
    .description("print a container's output (from its k8s-file log)")
    .argument('<container>', 'name or id (prefix)')
    .option('-f, --follow', 'keep printing until the container exits')
    .option('--root <dir>', 'store root')
    .action(async (ref: string, o: { follow?: boolean; root?: string }) => {
      const store = await ImageStore.open(o.root);
      let printed = 0;
      for (;;) {
        const rec = await findContainer(store, ref);
        const lines = await readLogs(rec);
        for (const l of lines.slice(printed)) (l.stream === 'stdout' ? process.stdout : process.stderr).write(`${l.text}\n`);
        printed = lines.length;
        if (!o.follow || rec.status !== 'running') return;
        await new Promise((r) => setTimeout(r, 200));
      }
    });
}
