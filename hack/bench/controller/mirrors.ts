// The controller benchmark's driver (run by hack/bench/controller.sh):
//   mirrors.ts KUBECONFIG REGISTRY COUNT REPOS TAGS TIMEOUT_S METRICS_URL name=PID...
// Creates COUNT ImageMirrors (mirror i: REGISTRY/bench/src<i%REPOS> -> .../dst<i%REPOS>, tags
// t1..tTAGS, hourly), watches them with the runtime's own informer until every one is Ready=True
// for its generation, then prints: the time from the first create to the last Ready, the
// controller's peak RSS (VmHWM) and CPU seconds, the CPU of the other processes named on the
// command line (the first name=PID is the controller), and the controller's reconcile counters.
// Exits 1 when not all are Ready within TIMEOUT_S (the figures are printed all the same).
import { readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { KubeClient, resourcePath } from '../../../src/k8s/runtime/client.js';
import { Informer } from '../../../src/k8s/runtime/informer.js';
import type { ImageMirror } from '../../../src/k8s/api/imagemirror.js';

const [kubeconfig, registry, countArg, reposArg, tagsArg, timeoutArg, metricsUrl, ...procArgs] = process.argv.slice(2);
const count = Number(countArg);
const repos = Number(reposArg);
const tags = Number(tagsArg);
const timeoutMs = Number(timeoutArg) * 1000;
const procs = procArgs.map((a) => {
  const [name, pid] = a.split('=');
  return { name: name!, pid: Number(pid) };
});
if (
  !kubeconfig ||
  !registry ||
  !(count > 0) ||
  !(repos > 0) ||
  !(tags > 0) ||
  !(timeoutMs > 0) ||
  !metricsUrl ||
  procs.length === 0 ||
  procs.some((p) => !p.name || !(p.pid > 0))
) {
  console.error('usage: mirrors.ts KUBECONFIG REGISTRY COUNT REPOS TAGS TIMEOUT_S METRICS_URL controller=PID [name=PID...]');
  process.exit(2);
}
const NAMESPACE = 'default';
const IMAGE_MIRROR_RESOURCE = { group: 'stevedore.dev', version: 'v1alpha1', plural: 'imagemirrors' };
const CLK_TCK = 100; // USER_HZ: what /proc/<pid>/stat counts in on Linux

/** utime + stime of a process in seconds (fields 14 and 15 of /proc/<pid>/stat, after the comm). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}
/** A `VmHWM:`/`VmRSS:` line of /proc/<pid>/status in MiB. */
function memMiB(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const kc = new KubeConfig();
kc.loadFromFile(kubeconfig);
const client = new KubeClient(kc);
const log = pino({ level: 'warn' });
const controller = procs[0]!;

function mirror(i: number): ImageMirror {
  const r = i % repos;
  return {
    apiVersion: 'stevedore.dev/v1alpha1',
    kind: 'ImageMirror',
    metadata: { name: `bench-${String(i).padStart(4, '0')}`, namespace: NAMESPACE },
    spec: {
      source: { registry: { repository: `${registry}/bench/src${r}`, insecure: true } },
      destination: { registry: { repository: `${registry}/bench/dst${r}`, insecure: true } },
      tags: { list: Array.from({ length: tags }, (_, t) => `t${t + 1}`) },
      schedule: { interval: '1h' },
    },
  } as ImageMirror;
}

const isReady = (o: ImageMirror) => {
  const c = o.status?.conditions?.find((x) => x.type === 'Ready');
  return c?.status === 'True' && c.observedGeneration === o.metadata.generation;
};

const ready = new Set<string>();
let allReady: () => void;
const allReadyP = new Promise<void>((r) => (allReady = r));
const informer = new Informer<ImageMirror>(client, IMAGE_MIRROR_RESOURCE, { namespace: NAMESPACE, log });
const observe = (o: ImageMirror) => {
  if (!o.metadata.name?.startsWith('bench-')) return;
  if (isReady(o)) ready.add(o.metadata.name);
  else ready.delete(o.metadata.name);
  if (ready.size >= count) allReady();
};
informer.addHandlers({ onAdd: observe, onUpdate: (_a, b) => observe(b) });
const stop = new AbortController();
const informing = informer.run(stop.signal);
await informer.waitForSync();

const cpu0 = new Map(procs.map((p) => [p.name, cpuSeconds(p.pid)]));
const rss0 = memMiB(controller.pid, 'VmRSS');
const t0 = performance.now();
// Create with a few requests in flight, as `kubectl apply -f dir/` of many files would.
let next = 0;
let createErrors = 0;
await Promise.all(
  Array.from({ length: 16 }, async () => {
    while (next < count) {
      const i = next++;
      try {
        await client.create(resourcePath(IMAGE_MIRROR_RESOURCE, NAMESPACE), mirror(i));
      } catch (err) {
        createErrors++;
        if (createErrors <= 3) console.error(`create bench-${i}: ${(err as Error).message}`);
      }
    }
  }),
);
const tCreated = (performance.now() - t0) / 1000;
console.error(`created ${count - createErrors} ImageMirrors in ${tCreated.toFixed(1)} s`);

const progress = setInterval(() => {
  console.error(
    `  ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s: ${ready.size}/${count} Ready, controller RSS ${memMiB(controller.pid, 'VmRSS').toFixed(0)} MiB, CPU ${(cpuSeconds(controller.pid) - cpu0.get(controller.name)!).toFixed(1)} s`,
  );
}, 5000);
const timedOut = await Promise.race([allReadyP.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), timeoutMs).unref())]);
clearInterval(progress);
const tReady = (performance.now() - t0) / 1000;

let metrics = '';
try {
  const res = await fetch(metricsUrl);
  metrics = await res.text();
} catch (err) {
  metrics = `# metrics unavailable: ${(err as Error).message}`;
}
const counters = metrics
  .split('\n')
  .filter((l) => /^stevedore_controller_reconcile_total\{controller="imagemirror"/.test(l))
  .map((l) => l.replace(/^stevedore_controller_reconcile_total/, '').replace('controller="imagemirror",', ''));

const line = (k: string, v: string) => console.log(`${k.padEnd(34)} ${v}`);
line('ImageMirrors', `${count} (${repos} source repositories x ${tags} tags, destination up to date)`);
line('created in', `${tCreated.toFixed(1)} s${createErrors ? ` (${createErrors} creates failed)` : ''}`);
line(timedOut ? 'Ready after timeout' : 'all Ready after', `${tReady.toFixed(1)} s${timedOut ? ` (${ready.size}/${count} Ready)` : ''}  [target < 60 s]`);
line('controller peak RSS (VmHWM)', `${memMiB(controller.pid, 'VmHWM').toFixed(0)} MiB (${rss0.toFixed(0)} MiB idle before the run)  [target < 200 MiB]`);
for (const p of procs) line(`${p.name} CPU during the run`, `${(cpuSeconds(p.pid) - cpu0.get(p.name)!).toFixed(1)} s`);
const own = process.cpuUsage();
line('this driver CPU (creates, watch)', `${((own.user + own.system) / 1e6).toFixed(1)} s`);
line('controller CPU since start', `${cpuSeconds(controller.pid).toFixed(1)} s`);
const gauge = (name: string) => {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec(metrics);
  return m ? `${(Number(m[1]) / 2 ** 20).toFixed(0)} MiB` : '?';
};
line(
  'controller heap at the end',
  `${gauge('nodejs_heap_size_used_bytes')} used of ${gauge('nodejs_heap_size_total_bytes')}, external ${gauge('nodejs_external_memory_bytes')}`,
);
line('reconciles (imagemirror)', counters.join(' ') || '(none reported)');
line('load average at the end', readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '));

stop.abort();
await informing;
process.exit(timedOut || createErrors ? 1 : 0);
