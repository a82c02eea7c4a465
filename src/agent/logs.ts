/**
 * `stevedore logs run/NAME`: the whole output of a ContainerRun, every attempt in order, read from
 * the node's container store (the agent's --root). This works where the CLI runs on the node the
 * run was bound to (or any host that mounts the agent's store); the agent keeps the log until the
 * ContainerRun is deleted.
 */
import { listContainers, readLogs } from '../runtime/containers.js';
import type { ImageStore } from '../runtime/store/index.js';
import { NotFoundError } from '../util/errors.js';
import { parseAttemptName } from './naming.js';

export interface RunLogLine {
  attempt: number;
  stream: 'stdout' | 'stderr';
  text: string;
  /** False for a last line the container did not end with a newline. */
  newline: boolean;
}

export async function runLogs(store: ImageStore, namespace: string, name: string): Promise<{ lines: RunLogLine[]; running: boolean }> {
  const attempts = (await listContainers(store))
    .map((rec) => ({ rec, parsed: parseAttemptName(rec.name) }))
    .filter((a) => a.parsed?.namespace === namespace && a.parsed.name === name)
    .sort((a, b) => a.parsed!.attempt - b.parsed!.attempt);
  if (attempts.length === 0) {
    throw new NotFoundError(
      `no container of ContainerRun ${namespace}/${name} in the store at ${store.root} (is this the node it ran on, and --root the agent's store?)`,
    );
  }
  const lines: RunLogLine[] = [];
  for (const a of attempts) for (const l of await readLogs(a.rec)) lines.push({ attempt: a.parsed!.attempt, ...l });
  return { lines, running: attempts[attempts.length - 1]!.rec.status === 'running' };
}
