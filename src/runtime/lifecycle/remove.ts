/**
 * Removing a container of the store (its bundle, upper dir, log and record): refused while it runs
 * unless forced (then it is stopped first, as `podman rm -f`); a lost container (its monitor gone)
 * is cleaned up the way its monitor would have.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { StevedoreError } from '../../util/errors.js';
import type { ImageStore } from '../store/index.js';
import { containerState } from './state.js';
import { stopContainer, type StopOptions } from './stop.js';

/** `rm` of a running container without force (Podman exits 2 for it). */
export class ContainerRunningError extends StevedoreError {
  constructor(name: string) {
    super('CONTAINER_RUNNING', `cannot remove container ${name} as it is running: stop it first, or remove it with --force`);
  }
}

export interface RemoveOptions extends StopOptions {
  /** Stop a running container first (default: refuse with ContainerRunningError). */
  force?: boolean;
}

/** Returns whether the container was running (or lost) when it was removed. */
export async function removeContainer(store: ImageStore, id: string, o: RemoveOptions = {}): Promise<boolean> {
  const st = await containerState(store, id);
  if (st.state === 'running' && !o.force) throw new ContainerRunningError(st.record.name);
  const was = await stopContainer(store, id, o);
  await rm(join(store.root, 'containers', id), { recursive: true, force: true });
  return was === 'running' || was === 'lost';
}
