/**
 * Stops (SIGTERM, grace, SIGKILL) and removes one attempt's container from the node's store: the
 * one way the agent gets rid of a container, for a deleted run, a run moved to another node, and
 * what the agent finds on start-up that the API no longer wants.
 */
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { processAlive } from '../runtime/containers.js';
import { ociRuntime } from '../runtime/oci-runtime.js';
import type { ImageStore } from '../runtime/store/index.js';
import { StevedoreError } from '../util/errors.js';
import { attemptState } from './launch.js';

const exec = promisify(execFile);

export async function waitProcessGone(pid: number | undefined, ms: number): Promise<void> {
  if (pid === undefined) return;
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    // Gone, or a zombie: a monitor orphaned by an earlier agent may wait for a PID 1 that never reaps.
    if (!processAlive(pid)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new StevedoreError('MONITOR_STUCK', `container monitor ${pid} did not exit`, { retryable: true });
}

/** Returns whether the container was still running (or lost) when asked to go. */
export async function stopAndRemoveContainer(store: ImageStore, id: string, graceMs: number): Promise<boolean> {
  let st = await attemptState(store, id);
  const wasLive = st.state === 'running' || st.state === 'lost';
  if (st.state === 'running') {
    const rt = ociRuntime(st.record.runtime, st.record.stateRoot ? { stateRoot: st.record.stateRoot } : {});
    await rt.kill(id, 'SIGTERM', { all: true }).catch(() => undefined);
    const deadline = Date.now() + graceMs;
    let killed = false;
    for (;;) {
      st = await attemptState(store, id);
      if (st.state !== 'running') break;
      if (!killed && Date.now() > deadline) {
        killed = true;
        await rt.kill(id, 'SIGKILL', { all: true }).catch(() => undefined);
      }
      if (Date.now() > deadline + 15_000) throw new StevedoreError('CONTAINER_STUCK', `container ${id} did not exit after SIGKILL`, { retryable: true });
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  if (st.state === 'lost') {
    // No monitor: stop the container ourselves and undo the rootfs mount it would have undone.
    const rt = ociRuntime(st.record.runtime, st.record.stateRoot ? { stateRoot: st.record.stateRoot } : {});
    await rt.kill(id, 'SIGKILL', { all: true }).catch(() => undefined);
    await rt.delete(id, { force: true }).catch(() => undefined);
    await exec('umount', [join(st.record.bundle, 'rootfs')]).catch(() => undefined);
  }
  // The monitor unmounts the rootfs after recording the exit: remove nothing under its feet.
  if (st.state !== 'absent') await waitProcessGone(st.record.monitorPid, 15_000);
  await rm(join(store.root, 'containers', id), { recursive: true, force: true });
  return wasLive;
}
