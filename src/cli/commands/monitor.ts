import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { runContainer, type RunOptions } from '../../runtime/container.js';
import type { ContainerRecord } from '../../runtime/containers.js';
import { ociRuntime } from '../../runtime/oci-runtime.js';
import { ImageStore } from '../../runtime/store/index.js';
import { errorMessage } from '../../util/errors.js';
import { startFailureExitCode } from '../start-failure.js';

export interface MonitorJob {
  root: string;
  options: RunOptions;
}

interface MonitorError {
  message: string;
  exitCode: number;
}

/**
 * The job file holds the run's options, env values (Secrets included) among them, until the
 * monitor reads and removes it: only its owner may read it. A leftover of an earlier launch with
 * the same id (the agent's ids are per attempt) is removed first, so the mode is always this one.
 */
export async function writeJobFile(path: string, job: MonitorJob): Promise<void> {
  await rm(path, { force: true });
  await writeFile(path, JSON.stringify(job), { mode: 0o600, flag: 'wx' });
}

/** The command line that runs this same program again (script or `-e` code, with node's flags). */
function selfCommand(): string[] {
  const evalMode = process.execArgv.some((a) => a === '-e' || a === '--eval' || a.startsWith('--eval=') || a === '-p' || a === '--print');
  return [...process.execArgv, ...(evalMode ? [] : [process.argv[1]!])];
}

/**
 * `run -d`: a detached monitor process (our conmon) runs the container in the foreground with its
 * output going only to the k8s-file log, and records its exit. Resolves once the container is
 * running (its record says so), or with the monitor's start failure.
 */
export async function startDetached(store: ImageStore, options: RunOptions): Promise<{ id: string; error?: MonitorError }> {
  const id = options.id ?? randomBytes(32).toString('hex');
  const runDir = join(store.root, 'run');
  await mkdir(runDir, { recursive: true, mode: 0o700 });
  const jobFile = join(runDir, `${id}.job.json`);
  const errFile = join(runDir, `${id}.err.json`);
  await writeJobFile(jobFile, { root: store.root, options: { ...options, id } });
  const child = spawn(process.execPath, [...selfCommand(), 'container-monitor', jobFile], { detached: true, stdio: 'ignore' });
  let exited = false;
  child.once('exit', () => (exited = true));
  child.unref();
  const recordFile = join(store.root, 'containers', id, 'state.json');
  const readError = async (): Promise<MonitorError | undefined> => {
    const text = await readFile(errFile, 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    await rm(errFile, { force: true });
    return JSON.parse(text) as MonitorError;
  };
  for (;;) {
    const error = await readError();
    if (error) return { id, error };
    const rec = await readFile(recordFile, 'utf8').then((t) => JSON.parse(t) as ContainerRecord, () => undefined);
    if (exited || rec?.status === 'exited') {
      // Finished already: a quick command, or a start failure the monitor is about to report.
      for (let i = 0; i < 200 && !exited; i++) await new Promise((r) => setTimeout(r, 25));
      const late = await readError();
      if (late) return { id, error: late };
      if (rec || (await readFile(recordFile, 'utf8').catch(() => undefined))) return { id };
      return { id, error: { message: 'the container monitor exited before the container started', exitCode: 125 } };
    }
    if (rec?.status === 'running') {
      const state = await ociRuntime(rec.runtime, rec.stateRoot ? { stateRoot: rec.stateRoot } : {}).state(id).catch(() => undefined);
      if (state?.status === 'running') return { id };
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The hidden verb the detached monitor runs. */
export function registerMonitor(program: Command): void {
  program
    .command('container-monitor', { hidden: true })
    .argument('<job>', 'job file written by run --detach')
    .action(async (jobFile: string) => {
      const job = JSON.parse(await readFile(jobFile, 'utf8')) as MonitorJob;
      await rm(jobFile, { force: true });
      const store = await ImageStore.open(job.root);
      try {
        await runContainer(store, job.options);
      } catch (err) {
        const e: MonitorError = { message: errorMessage(err), exitCode: startFailureExitCode(err) ?? 125 };
        await writeFile(join(job.root, 'run', `${job.options.id}.err.json`), JSON.stringify(e));
      }
    });
}
