import type { Command } from 'commander';
import { findContainer, readLogs } from '../../runtime/containers.js';
import { ImageStore } from '../../runtime/store/index.js';
import { sleep } from '../../util/sleep.js';

/** A line as the container wrote it: with its newline, or without when it wrote none (as podman logs). */
function write(l: { stream: 'stdout' | 'stderr'; text: string; newline: boolean }): void {
  (l.stream === 'stdout' ? process.stdout : process.stderr).write(l.newline ? `${l.text}\n` : l.text);
}

/** How many lines to print: all once the container has ended; while following, not a line still being written. */
function complete(lines: readonly { newline: boolean }[], ended: boolean): number {
  return ended ? lines.length : lines.filter((l) => l.newline).length;
}

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
          const upto = complete(lines, !o.follow || !running);
          for (const l of lines.slice(printed, upto)) write(l);
          printed = upto;
          if (!o.follow || !running) return;
          await sleep(200);
        }
      }
      for (;;) {
        const rec = await findContainer(store, ref);
        const lines = await readLogs(rec);
        const upto = complete(lines, !o.follow || rec.status !== 'running');
        for (const l of lines.slice(printed, upto)) write(l);
        printed = upto;
        if (!o.follow || rec.status !== 'running') return;
        await sleep(200);
      }
    });
}
