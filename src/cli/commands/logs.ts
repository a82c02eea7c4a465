import type { Command } from 'commander';
import { findContainer, readLogs } from '../../runtime/containers.js';
import { ImageStore } from '../../runtime/store/index.js';
import { sleep } from '../../util/sleep.js';

/** `stevedore logs [-f] CONTAINER`: its output from the k8s-file log, stdout and stderr kept apart. */
export function registerLogs(program: Command): void {
  program
    .command('logs')
    .description("print a container's output (from its k8s-file log)")
    .argument('<container>', 'name or id (prefix), or run/NAME for a ContainerRun run on this node')
    .option('-f, --follow', 'keep printing until the container exits')
    .option('--root <dir>', 'store root')
    .option('-n, --namespace <ns>', 'namespace of a run/NAME (a ContainerRun)', 'default')
    .action(async (ref: string, o: { follow?: boolean; root?: string; namespace: string }) => {
      const store = await ImageStore.open(o.root);
      let printed = 0;
      // `run/NAME`: a ContainerRun's every attempt, from the node agent's store (--root) on this host.
      if (ref.startsWith('run/')) {
        const { runLogs } = await import('../../agent/logs.js');
        for (;;) {
          const { lines, running } = await runLogs(store, o.namespace, ref.slice(4));
          for (const l of lines.slice(printed)) (l.stream === 'stdout' ? process.stdout : process.stderr).write(`${l.text}\n`);
          printed = lines.length;
          if (!o.follow || !running) return;
          await sleep(200);
        }
      }
      for (;;) {
        const rec = await findContainer(store, ref);
        const lines = await readLogs(rec);
        for (const l of lines.slice(printed)) (l.stream === 'stdout' ? process.stdout : process.stderr).write(`${l.text}\n`);
        printed = lines.length;
        if (!o.follow || rec.status !== 'running') return;
        await sleep(200);
      }
    });
}
