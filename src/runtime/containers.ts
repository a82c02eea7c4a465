import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidInputError, NotFoundError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { parseK8sLog } from './logs.js';
import { ociRuntime, type OciRuntime, type RuntimeName } from './oci-runtime.js';
import type { ImageStore } from './store/index.js';

/** What `ps` and `logs` know of a container: its `state.json` in the container's directory. */
export interface ContainerRecord {
  id: string;
  name: string;
  image: string;
  imageDigest: string;
  runtime: RuntimeName;
  /** `running` while a `run` is attached to it; `exited` once it has returned. */
  status: 'running' | 'exited';
  exitCode?: number;
  reason?: string;
  createdAt: string;
  finishedAt?: string;
  bundle: string;
  logPath: string;
  command: string[];
  /** The snapshot directory name under `snapshots/` the rootfs is made from (kept by prune). */
  snapshot?: string;
  /** The process that runs the container and writes its exit (a `run`, or the `-d` monitor). */
  monitorPid?: number;
  /** The runtime's state directory, when not its default. */
  stateRoot?: string;
}

const STATE_FILE = 'state.json';

/** The OCI runtime that runs a recorded container (its runtime and state directory): the one way to get it. */
export function runtimeFor(rec: Pick<ContainerRecord, 'runtime' | 'stateRoot'>): OciRuntime {
  return ociRuntime(rec.runtime, rec.stateRoot ? { stateRoot: rec.stateRoot } : {});
}

/** The record of container `id`, or undefined when it has none (absent, or being created). */
export async function readRecord(store: ImageStore, id: string): Promise<ContainerRecord | undefined> {
  try {
    return JSON.parse(await readFile(join(store.root, 'containers', id, STATE_FILE), 'utf8')) as ContainerRecord;
  } catch {
    return undefined;
  }
}

/** Written atomically (temp file and rename): `ps` and `stop` read it while the monitor writes it. */
export async function writeRecord(rec: ContainerRecord): Promise<void> {
  await writeFileAtomic(join(rec.bundle, STATE_FILE), JSON.stringify(rec, null, 2));
}

/**
 * Every container of the store with a record. A `running` record whose runtime no longer knows
 * the container (its `run` was killed) is reported as exited with reason `Unknown`.
 */
export async function listContainers(store: ImageStore): Promise<ContainerRecord[]> {
  const out: ContainerRecord[] = [];
  for (const id of await store.containerIds()) {
    const rec = await readRecord(store, id);
    if (!rec) continue; // being created, or not ours
    if (rec.status === 'running') {
      const alive = await runtimeFor(rec)
        .state(rec.id)
        .then(
          (s) => s.status !== 'stopped',
          () => false,
        );
      // Between the runtime forgetting the container and its monitor recording the exit, the
      // monitor is still alive: the container is still "running" until it has written its record.
      if (!alive && !(rec.monitorPid !== undefined && processAlive(rec.monitorPid))) Object.assign(rec, { status: 'exited', reason: 'Unknown' });
    }
    out.push(rec);
  }
  return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}

/**
 * Whether a process still runs. A zombie does not: it has exited and only waits for its parent to
 * reap it (a monitor orphaned into a PID namespace whose init never reaps stays a zombie for good),
 * yet `kill(pid, 0)` still succeeds on it, so its state in /proc/<pid>/stat is read as well.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    // Gone between the two looks; or no /proc to ask, where kill's answer stands.
    return !existsSync('/proc/self/stat');
  }
  // "pid (comm) S ...": comm may hold spaces and parentheses, so the state follows the last ')'.
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

/** By exact name, full id or a unique id prefix (as Podman). */
export async function findContainer(store: ImageStore, ref: string): Promise<ContainerRecord> {
  const all = await listContainers(store);
  const byName = all.find((c) => c.name === ref);
  if (byName) return byName;
  const byId = all.filter((c) => c.id.startsWith(ref));
  if (byId.length === 1) return byId[0]!;
  if (byId.length > 1) throw new InvalidInputError(`container id prefix "${ref}" is ambiguous`);
  throw new NotFoundError(`no container named or with id "${ref}"`);
}

/** Snapshot names the store's containers use (prune keeps them). */
export async function snapshotsInUse(store: ImageStore): Promise<Set<string>> {
  const out = new Set<string>();
  for (const c of await listContainers(store)) if (c.snapshot) out.add(c.snapshot.split('-')[0]!);
  return out;
}

/** One line of a container's output; `newline` false for a last line the container did not end. */
export interface LogLine {
  stream: 'stdout' | 'stderr';
  text: string;
  newline: boolean;
}

/**
 * The container's output from its k8s-file log, partial records joined, optionally one stream. A
 * partial record with no full one after it is text the container wrote without a newline (at its
 * exit, or so far): returned with `newline: false`.
 */
export async function readLogs(rec: ContainerRecord, opts: { stream?: 'stdout' | 'stderr' } = {}): Promise<LogLine[]> {
  const text = await readFile(rec.logPath, 'utf8').catch(() => '');
  const out: LogLine[] = [];
  const partial: Record<'stdout' | 'stderr', string | undefined> = { stdout: undefined, stderr: undefined };
  for (const r of parseK8sLog(text)) {
    if (opts.stream && r.stream !== opts.stream) continue;
    if (r.tag === 'P') {
      partial[r.stream] = (partial[r.stream] ?? '') + r.text;
      continue;
    }
    out.push({ stream: r.stream, text: (partial[r.stream] ?? '') + r.text, newline: true });
    partial[r.stream] = undefined;
  }
  for (const stream of ['stdout', 'stderr'] as const) {
    const rest = partial[stream];
    if (rest !== undefined) out.push({ stream, text: rest, newline: false });
  }
  return out;
}
