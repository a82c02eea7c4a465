import { existsSync, readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidInputError, NotFoundError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { parseK8sLog } from './logs.js';
import { ociRuntime, type RuntimeName } from './oci-runtime.js';
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
    let rec: ContainerRecord;
    try {
      rec = JSON.parse(await readFile(join(store.root, 'containers', id, STATE_FILE), 'utf8')) as ContainerRecord;
    } catch {
      continue; // being created, or not ours
    }
    if (rec.status === 'running') {
      const alive = await ociRuntime(rec.runtime, rec.stateRoot ? { stateRoot: rec.stateRoot } : {})
        .state(rec.id)
        .then((s) => s.status !== 'stopped', () => false);
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

export async function removeContainer(store: ImageStore, rec: ContainerRecord): Promise<void> {
  if (rec.status === 'running') throw new InvalidInputError(`container ${rec.name} is running; stop it first`);
  await rm(join(store.root, 'containers', rec.id), { recursive: true, force: true });
}

/** The container's output from its k8s-file log, partial records joined, optionally one stream. */
export async function readLogs(rec: ContainerRecord, opts: { stream?: 'stdout' | 'stderr' } = {}): Promise<{ stream: 'stdout' | 'stderr'; text: string }[]> {
  const text = await readFile(rec.logPath, 'utf8').catch(() => '');
  const out: { stream: 'stdout' | 'stderr'; text: string }[] = [];
  const partial: Record<string, string> = { stdout: '', stderr: '' };
  for (const r of parseK8sLog(text)) {
    if (opts.stream && r.stream !== opts.stream) continue;
    if (r.tag === 'P') {
      partial[r.stream] += r.text;
      continue;
    }
    out.push({ stream: r.stream, text: partial[r.stream] + r.text });
    partial[r.stream] = '';
  }
  return out;
}
