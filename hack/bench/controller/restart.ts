// The controller benchmark's second phase (run by hack/bench/controller.sh): a controller started
// over COUNT ImageMirrors that are all Ready and up to date, as after a restart or a leader change.
//   restart.ts METRICS_URL COUNT TIMEOUT_S PID
// Polls the new controller's /metrics until it has reconciled COUNT ImageMirrors, then prints the
// time since its start, its peak RSS (VmHWM) and CPU seconds. Exits 1 on timeout.
import { readFileSync } from 'node:fs';
import { sleep } from '../../../src/util/sleep.js';

const [metricsUrl, countArg, timeoutArg, pidArg] = process.argv.slice(2);
const count = Number(countArg);
const timeoutMs = Number(timeoutArg) * 1000;
const pid = Number(pidArg);
if (!metricsUrl || !(count > 0) || !(timeoutMs > 0) || !(pid > 0)) {
  console.error('usage: restart.ts METRICS_URL COUNT TIMEOUT_S PID');
  process.exit(2);
}
const CLK_TCK = 100;
const stat = () => {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  // utime, stime (fields 14, 15) and starttime (22) in clock ticks since boot.
  return { cpu: (Number(f[11]) + Number(f[12])) / CLK_TCK, start: Number(f[19]) / CLK_TCK };
};
const uptime = () => Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
const hwm = () => Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;

const deadline = Date.now() + timeoutMs;
let done = 0;
let results = '';
for (;;) {
  try {
    const text = await (await fetch(metricsUrl)).text();
    const lines = text.split('\n').filter((l) => /^stevedore_controller_reconcile_total\{controller="imagemirror"/.test(l));
    done = lines.reduce((n, l) => n + Number(l.split(' ').pop()), 0);
    results = lines.map((l) => l.replace(/^stevedore_controller_reconcile_total\{controller="imagemirror",/, '{')).join(' ');
  } catch {
    // not listening yet
  }
  if (done >= count || Date.now() > deadline) break;
  await sleep(200);
}
const s = stat();
const line = (k: string, v: string) => console.log(`${k.padEnd(34)} ${v}`);
const elapsed = (uptime() - s.start).toFixed(1);
line(
  done >= count ? 'restart: all reconciled after' : 'restart: timed out after',
  `${elapsed} s from process start (${done}/${count} reconciles: ${results || 'none'})`,
);
line('restart: controller peak RSS', `${hwm().toFixed(0)} MiB`);
line('restart: controller CPU', `${s.cpu.toFixed(1)} s`);
process.exit(done >= count ? 0 : 1);
