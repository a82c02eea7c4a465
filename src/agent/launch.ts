/**
 * How the agent starts a container so that it outlives the agent: a detached monitor process
 * (the runtime core's `run -d` monitor, our conmon) runs it, streams its output to the k8s-file
 * log and records its exit in the container's record. The agent only reads records, so a
 * restarted agent finds running containers again and never runs a finished one twice.
 *
 * The CLI injects the implementation (`startDetached`), which keeps `agent/` free of `cli/`.
 */
import type { RunOptions } from '../runtime/container.js';
import { processAlive, type ContainerRecord } from '../runtime/containers.js';
import type { ImageStore } from '../runtime/store/index.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export type LaunchContainer = (store: ImageStore, options: RunOptions) => Promise<{ id: string; error?: { message: string; exitCode: number } }>;

export type AttemptState =
  | { state: 'absent' }
  | { state: 'running'; record: ContainerRecord }
  | { state: 'exited'; record: ContainerRecord }
  /** The record says running but its monitor is gone (the node or the monitor died). */
  | { state: 'lost'; record: ContainerRecord };

/** The state of one attempt's container, from its record and its monitor's liveness. */
export async function attemptState(store: ImageStore, id: string): Promise<AttemptState> {
  let record: ContainerRecord;
  try {
    record = JSON.parse(await readFile(join(store.root, 'containers', id, 'state.json'), 'utf8')) as ContainerRecord;
  } catch {
    return { state: 'absent' };
  }
  if (record.status === 'exited') return { state: 'exited', record };
  if (record.monitorPid !== undefined && processAlive(record.monitorPid)) return { state: 'running', record };
  // The monitor may have written the exit between our two reads.
  const again = JSON.parse(await readFile(join(store.root, 'containers', id, 'state.json'), 'utf8').catch(() => '{}')) as Partial<ContainerRecord>;
  if (again.status === 'exited') return { state: 'exited', record: again as ContainerRecord };
  return { state: 'lost', record };
}
