/**
 * How a ContainerRun's attempts are named in the node's container store. The id is derived from
 * the object's uid and the attempt number, so an agent that restarts finds the container of the
 * current attempt again (and never starts a second one for it); the name says which run it is,
 * for `stevedore ps` and `stevedore logs run/NAME`.
 */
import { createHash } from 'node:crypto';
import { AGENT_LEASE_PREFIX } from '../k8s/api/containerrun.js';

export function attemptContainerId(uid: string, attempt: number): string {
  return createHash('sha256').update(`containerrun/${uid}/${attempt}`).digest('hex');
}

/** `<namespace>_<name>_<attempt>`: neither namespaces nor object names may contain `_`. */
export function attemptContainerName(namespace: string, name: string, attempt: number): string {
  return `${namespace}_${name}_${attempt}`;
}

/** Parses a name made by attemptContainerName; undefined for other containers. */
export function parseAttemptName(containerName: string): { namespace: string; name: string; attempt: number } | undefined {
  const m = /^([a-z0-9-]+)_([a-z0-9.-]+)_(\d+)$/.exec(containerName);
  return m ? { namespace: m[1]!, name: m[2]!, attempt: Number(m[3]) } : undefined;
}

export function agentLeaseName(node: string): string {
  return `${AGENT_LEASE_PREFIX}${node}`;
}
