/**
 * Stopping a container of the store, the one implementation `stevedore stop`/`kill`/`rm -f` and the
 * node agent share: the stop signal to the container's PID 1 (as `podman stop`: its other processes
 * are its own to end), SIGKILL after the grace period, and for a container whose
 * monitor is gone (lost), what that monitor would have done: delete it from the runtime and undo
 * its rootfs mount.
 */
import { errorMessage, StevedoreError } from '../../util/errors.js';
import { rootLogger } from '../../util/log.js';
import { sleep } from '../../util/sleep.js';
import { runtimeFor, type ContainerRecord } from '../containers.js';
import type { ImageStore } from '../store/index.js';
import { containerState, waitMonitorGone, type ContainerLiveness } from './state.js';

const log = rootLogger.child({ component: 'container' });

/** Podman's default stop timeout. */
export const DEFAULT_STOP_GRACE_MS = 10_000;
/** How long a container may take to go after SIGKILL, and its monitor after it, before that is an error. */
const AFTER_KILL_MS = 15_000;
const POLL_MS = 100;

export interface StopOptions {
  /** Time between the stop signal and SIGKILL (default 10 s; 0 sends SIGKILL at once). */
  graceMs?: number;
  /** The stop signal (default SIGTERM). */
  signal?: string;
}

/**
 * Sends `signal` to the container: to its PID 1, or with `all` to every process in it. A container
 * that has just exited is not an error (the runtime no longer knows it): logged at debug level.
 */
export async function signalContainer(rec: Pick<ContainerRecord, 'id' | 'runtime' | 'stateRoot'>, signal: string, o: { all?: boolean } = {}): Promise<void> {
  await runtimeFor(rec)
    .kill(rec.id, signal, o)
    .catch((err: unknown) => log.debug({ id: rec.id, signal, err: errorMessage(err) }, 'signal not delivered (the container has exited?)'));
}

/** A container whose monitor is gone: kill it, delete it from the runtime, release its rootfs. */
async function cleanUpLost(store: ImageStore, rec: ContainerRecord): Promise<void> {
  await signalContainer(rec, 'SIGKILL', { all: true });
  await runtimeFor(rec)
    .delete(rec.id, { force: true })
    .catch((err: unknown) => log.debug({ id: rec.id, err: errorMessage(err) }, 'runtime delete of a lost container failed (already gone?)'));
  await store.releaseRootfs(rec.id);
}

/** Exited so recently that its monitor may still be releasing the rootfs. */
function recentlyFinished(rec: ContainerRecord): boolean {
  return rec.finishedAt === undefined || Date.now() - Date.parse(rec.finishedAt) < AFTER_KILL_MS;
}

/**
 * Stops the container `id` and waits until its monitor has recorded the exit and is gone. Returns
 * the state it was in (`running` or `lost` when there was something to stop).
 */
export async function stopContainer(store: ImageStore, id: string, o: StopOptions = {}): Promise<ContainerLiveness['state']> {
  const first = await containerState(store, id);
  let st = first;
  if (st.state === 'running') {
    const graceMs = o.graceMs ?? DEFAULT_STOP_GRACE_MS;
    const deadline = Date.now() + graceMs;
    let killed = graceMs <= 0;
    // PID 1 only, SIGKILL too: the container has its own PID namespace, which dies with its PID 1
    // (and `runc kill --all` fails rootless without a cgroup, where this works).
    await signalContainer(st.record, killed ? 'SIGKILL' : (o.signal ?? 'SIGTERM'));
    for (;;) {
      await sleep(POLL_MS);
      st = await containerState(store, id);
      if (st.state !== 'running') break;
      if (!killed && Date.now() >= deadline) {
        killed = true;
        log.debug({ id, graceMs }, 'the container did not stop within its grace period: SIGKILL');
        await signalContainer(st.record, 'SIGKILL');
      }
      if (Date.now() > deadline + AFTER_KILL_MS) throw new StevedoreError('CONTAINER_STUCK', `container ${id} did not exit after SIGKILL`, { retryable: true });
    }
  }
  if (st.state === 'lost') await cleanUpLost(store, st.record);
  // The monitor unmounts the rootfs after recording the exit: nothing is done under its feet. Only
  // a monitor that may still be at it is waited for: a long-finished one's pid may be another's now.
  if (st.state !== 'absent' && (first.state === 'running' || (st.state === 'exited' && recentlyFinished(st.record))))
    await waitMonitorGone(st.record.monitorPid, AFTER_KILL_MS);
  return first.state;
}
