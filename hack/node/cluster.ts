// `make cluster-up` / `make cluster-down`: the local node of hack/lib/harness/node.ts for humans.
//   node --import ./hack/lib/ts-resolve.ts hack/node/cluster.ts up     start it in the background
//   node --import ./hack/lib/ts-resolve.ts hack/node/cluster.ts down   stop it, clean up after it
//   node --import ./hack/lib/ts-resolve.ts hack/node/cluster.ts serve  (what `up` runs detached)
// State lives in $NODE_DIR (default ~/.cache/stevedore/node): admin.kubeconfig, logs/, the
// supervisor's PID in supervisor.pid, its log in supervisor.log.
import { spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { cleanupNodeDir, startNode, type LocalNode } from '../lib/harness/node.js';
import { nodeTools } from '../lib/harness/node.js';

const dir = process.env['NODE_DIR'] || join(process.env['STEVEDORE_CACHE'] || join(homedir(), '.cache', 'stevedore'), 'node');
const pidFile = join(dir, '..', 'node-supervisor.pid');
const logFile = join(dir, '..', 'node-supervisor.log');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function supervisorPid(): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    return pid > 0 && alive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function serve(): Promise<void> {
  let node: LocalNode | undefined;
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    await node?.stop();
    process.exit(code);
  };
  let signalled = false;
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.on(sig, () => {
      signalled = true;
      if (node) void stop(0);
    });
  }
  const timings: Record<string, number> = {};
  try {
    node = await startNode({ dir, removeDir: false, timings });
  } catch (err) {
    console.error(`cluster: ${(err as Error).message}`);
    process.exit(1);
  }
  if (signalled) return stop(0);
  console.log(`READY ${JSON.stringify({ kubeconfig: node.kubeconfigPath, registry: node.registry.host, podSubnet: node.podSubnet, timings })}`);
  setInterval(() => {}, 1 << 30);
}

async function up(): Promise<void> {
  if (await supervisorPid()) {
    console.error(`cluster-up: already running (PID ${await supervisorPid()}); kubeconfig ${join(dir, 'admin.kubeconfig')}`);
    return;
  }
  const started = Date.now();
  const out = openSync(logFile, 'w');
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, 'serve'], {
    detached: true,
    stdio: ['ignore', out, out],
    env: process.env,
  });
  await writeFile(pidFile, `${child.pid}\n`);
  child.unref();
  for (;;) {
    const log = await readFile(logFile, 'utf8').catch(() => '');
    const ready = /^READY (.*)$/m.exec(log);
    if (ready) {
      const info = JSON.parse(ready[1]!) as { kubeconfig: string; registry: string; podSubnet: string; timings: Record<string, number> };
      const t = nodeTools();
      console.log(
        `cluster-up: node Ready in ${((Date.now() - started) / 1000).toFixed(1)} s (${Object.entries(info.timings)
          .map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`)
          .join(', ')})`,
      );
      console.log(
        `  kubeconfig: ${info.kubeconfig}\n  registry:   ${info.registry} (plain HTTP, on the Pod bridge; Pods and this machine only)\n  Pod subnet: ${info.podSubnet}`,
      );
      console.log(`  try:        ${t.kubectl} --kubeconfig ${info.kubeconfig} get nodes -o wide`);
      console.log(`  stop:       make cluster-down`);
      return;
    }
    if (child.exitCode !== null || !alive(child.pid!)) {
      console.error(`cluster-up failed:\n${log}`);
      process.exit(1);
    }
    await sleep(100);
  }
}

async function down(): Promise<void> {
  const pid = await supervisorPid();
  if (pid) {
    process.kill(pid, 'SIGTERM');
    const until = Date.now() + 90_000;
    while (alive(pid) && Date.now() < until) await sleep(200);
    if (alive(pid)) {
      console.error(`cluster-down: supervisor ${pid} still running after 90 s; sending SIGKILL`);
      process.kill(pid, 'SIGKILL');
    }
  }
  // After a crash (or the SIGKILL above) the mounts, bridge and cgroups may still be there.
  if (existsSync(dir)) {
    const problems = await cleanupNodeDir(dir);
    for (const p of problems) console.error(`cluster-down: ${p}`);
  }
  await rm(pidFile, { force: true });
  console.log(pid ? `cluster-down: stopped (supervisor PID ${pid})` : 'cluster-down: nothing was running');
}

const cmd = process.argv[2];
if (cmd === 'up') await up();
else if (cmd === 'down') await down();
else if (cmd === 'serve') await serve();
else {
  console.error('usage: cluster.ts up|down|serve');
  process.exit(2);
}
