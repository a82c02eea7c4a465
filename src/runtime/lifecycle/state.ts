/**
 * The state of one container of the store, from its record and its monitor's liveness: the one
 * place that reads a record to decide whether a container runs, has exited, or was lost.
 */
import { StevedoreError } from '../../util/errors.js';
import { sleep } from '../../util/sleep.js';
import { processAlive, readRecord, type ContainerRecord } from '../containers.js';
import type { ImageStore } from '../store/index.js';

export type ContainerLiveness =
  | { state: 'absent' }
  | { state: 'running'; record: ContainerRecord }
  | { state: 'exited'; record: ContainerRecord }
  /** The record says running but its monitor is gone (the node or the monitor died). */
  | { state: 'lost'; record: ContainerRecord };

export async function containerState(store: ImageStore, id: string): Promise<ContainerLiveness> {
  const record = await readRecord(store, id);
  if (!record) return { state: 'absent' };
  if (record.status === 'exited') return { state: 'exited', record };
  if (record.monitorPid !== undefined && processAlive(record.monitorPid)) return { state: 'running', record };
  // The monitor may have written the exit between our two reads.
  const again = await readRecord(store, id);
  if (again?.status === 'exited') return { state: 'exited', record: again };
  return { state: 'lost', record };
}

/** Waits until the monitor process `pid` has exited (or is a zombie), at most `ms`. */
export async function waitMonitorGone(pid: number | undefined, ms: number): Promise<void> {
  if (pid === undefined) return;
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    // Gone, or a zombie: a monitor orphaned by an earlier agent may wait for a PID 1 that never reaps.
    if (!processAlive(pid)) return;
    await sleep(50);
  }
  throw new StevedoreError('MONITOR_STUCK', `container monitor ${pid} did not exit`, { retryable: true });
}
