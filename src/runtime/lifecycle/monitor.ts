/**
 * The container monitor (our conmon): a detached process that runs one container in the foreground
 * with its output going only to the k8s-file log, records its exit in the container's record (or
 * removes the container, with `remove`) and outlives whoever started it. `run -d` and the node
 * agent start containers through `startDetached`; the process is `monitor-main.ts`.
 *
 * Hand-over: the caller writes a job file (the run's options, env values and Secrets among them,
 * readable by the owner only), the monitor reads and removes it; a start failure is written to
 * `run/<id>.err.json` for the caller, with Podman's exit status for it.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../../util/errors.js';
import { sleep } from '../../util/sleep.js';
import { runContainer, type RunOptions } from '../container.js';
import { readRecord, runtimeFor } from '../containers.js';
import { ImageStore } from '../store/index.js';
import { startFailureExitCode } from './exit-status.js';
import { containerState } from './state.js';

export interface MonitorJob {
  root: string;
  options: RunOptions;
}

/** Why a detached container did not start, and the exit status `run` reports for it. */
export interface StartFailure {
  message: string;
  exitCode: number;
}

export interface DetachedStart {
  id: string;
  error?: StartFailure;
}

const POLL_MS = 25;
/** How long a monitor that saw its container exit may take to report a start failure. */
const LATE_ERROR_MS = 5_000;

/**
 * The job file holds the run's options, env values (Secrets included) among them, until the
 * monitor reads and removes it: only its owner may read it. A leftover of an earlier launch with
 * the same id (the agent's ids are per attempt) is removed first, so the mode is always this one.
 */
export async function writeJobFile(path: string, job: MonitorJob): Promise<void> {
  await rm(path, { force: true });
  await writeFile(path, JSON.stringify(job), { mode: 0o600, flag: 'wx' });
}

/**
 * Node's flags that load code (`--import`, `--require`, loaders: the TypeScript hooks of a run from
 * sources) are passed on to the monitor; `-e` code and its input type are not (the monitor is a file).
 */
function nodeFlags(execArgv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const a = execArgv[i]!;
    if (['-e', '--eval', '-p', '--print', '--input-type'].includes(a)) i++;
    else if (!a.startsWith('--input-type=') && !a.startsWith('--eval=') && !a.startsWith('--print=')) out.push(a);
  }
  return out;
}

/** The monitor's entry point beside this module (`.js` when compiled, `.ts` when run from sources). */
function monitorEntry(): string {
  const here = fileURLToPath(import.meta.url);
  return join(here, '..', `monitor-main${extname(here)}`);
}

const errorFile = (root: string, id: string) => join(root, 'run', `${id}.err.json`);

async function takeError(root: string, id: string): Promise<StartFailure | undefined> {
  const file = errorFile(root, id);
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  await rm(file, { force: true });
  return JSON.parse(text) as StartFailure;
}

/**
 * Starts a detached monitor for the container and resolves once the container is running (its
 * record says so and the runtime agrees), has already finished, or with the monitor's start failure.
 */
export async function startDetached(store: ImageStore, options: RunOptions): Promise<DetachedStart> {
  const id = options.id ?? randomBytes(32).toString('hex');
  const runDir = join(store.root, 'run');
  await mkdir(runDir, { recursive: true, mode: 0o700 });
  const jobFile = join(runDir, `${id}.job.json`);
  await writeJobFile(jobFile, { root: store.root, options: { ...options, id } });
  const child = spawn(process.execPath, [...nodeFlags(process.execArgv), monitorEntry(), jobFile], { detached: true, stdio: 'ignore' });
  let exited = false;
  child.once('exit', () => (exited = true));
  child.unref();
  let seen = false;
  for (;;) {
    const error = await takeError(store.root, id);
    if (error) return { id, error };
    const st = await containerState(store, id);
    if (st.state !== 'absent') seen = true;
    if (exited || st.state === 'exited' || st.state === 'lost') {
      // Finished already: a quick command, or a start failure the monitor is about to report.
      for (const deadline = Date.now() + LATE_ERROR_MS; !exited && Date.now() < deadline; ) await sleep(POLL_MS);
      const late = await takeError(store.root, id);
      if (late) return { id, error: late };
      // With `remove`, a quick command's container may be gone before it was ever seen.
      if (seen || options.remove || (await readRecord(store, id))) return { id };
      return { id, error: { message: 'the container monitor exited before the container started', exitCode: 125 } };
    }
    if (st.state === 'running') {
      const state = await runtimeFor(st.record)
        .state(id)
        .catch(() => undefined);
      if (state?.status === 'running') return { id };
    }
    await sleep(POLL_MS);
  }
}

/** What the monitor process does with its job file. */
export async function runMonitorJob(jobFile: string): Promise<void> {
  const job = JSON.parse(await readFile(jobFile, 'utf8')) as MonitorJob;
  await rm(jobFile, { force: true });
  const store = await ImageStore.open(job.root);
  try {
    await runContainer(store, job.options);
  } catch (err) {
    const failure: StartFailure = { message: errorMessage(err), exitCode: startFailureExitCode(err) ?? 125 };
    await writeFile(errorFile(job.root, job.options.id!), JSON.stringify(failure));
  }
}
