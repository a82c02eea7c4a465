/**
 * The container monitor process (`node monitor-main.js JOBFILE`), started detached by
 * `startDetached` (monitor.ts): it loads only the runtime, not the CLI.
 */
import module from 'node:module';

module.enableCompileCache?.();
const jobFile = process.argv[2];
if (!jobFile) {
  process.stderr.write('usage: monitor-main JOBFILE\n');
  process.exit(125);
}
const { runMonitorJob } = await import('./monitor.js');
await runMonitorJob(jobFile);
