/**
 * What an agent does when it (re)starts, before it takes any run: it compares the containers it
 * finds in the node's store with the API. A container whose run is gone (deleted while the agent
 * was away, or replaced by a new run of the same name), bound to another node (failed over), or
 * terminal (marked Failed/NodeLost by the controller while this agent was away) is stopped and
 * removed; a run that is terminal keeps its exited containers (their logs) until it is deleted.
 * Blocks of user-namespace ids held by runs that no longer exist here are given back.
 */
import { readdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { boundNode, CONTAINER_RUN_RESOURCE, type ContainerRun } from '../k8s/api/containerrun.js';
import { resourcePath, type KubeClient } from '../k8s/runtime/client.js';
import { listContainers } from '../runtime/containers.js';
import { containerState, removeContainer } from '../runtime/lifecycle/index.js';
import type { ImageStore } from '../runtime/store/index.js';
import { attemptContainerId, parseAttemptName } from './naming.js';
import type { UserNamespaceAllocator } from './userns.js';
import { releaseVolumes, runVolumesDir } from './volumes.js';

export interface RecoveryReport {
  /** Containers stopped and removed, with why. */
  removed: { id: string; run: string; why: 'gone' | 'moved' | 'terminal' }[];
  /** Runs whose ids were given back. */
  released: string[];
}

export async function recoverNode(o: {
  client: KubeClient;
  store: ImageStore;
  nodeName: string;
  namespace?: string;
  userns: UserNamespaceAllocator;
  graceMs: number;
  log: Logger;
}): Promise<RecoveryReport> {
  const report: RecoveryReport = { removed: [], released: [] };
  const list = await o.client.get<{ items: ContainerRun[] }>(resourcePath(CONTAINER_RUN_RESOURCE, o.namespace));
  // Every attempt container id of every run bound here, to its run.
  const mine = new Map<string, ContainerRun>();
  const liveUids = new Set<string>();
  for (const run of list.items) {
    if (boundNode(run) !== o.nodeName || !run.metadata.uid) continue;
    liveUids.add(run.metadata.uid);
    for (let n = 0; n <= (run.status?.restartCount ?? 0); n++) mine.set(attemptContainerId(run.metadata.uid, n), run);
  }
  for (const rec of await listContainers(o.store)) {
    const parsed = parseAttemptName(rec.name);
    if (!parsed) continue; // not a run's container (a `stevedore run` on the same store)
    if (o.namespace && parsed.namespace !== o.namespace) continue;
    const runName = `${parsed.namespace}/${parsed.name}`;
    const run = mine.get(rec.id);
    let why: RecoveryReport['removed'][number]['why'] | undefined;
    if (!run)
      why = list.items.some((r) => r.metadata.namespace === parsed.namespace && r.metadata.name === parsed.name && boundNode(r) !== o.nodeName)
        ? 'moved'
        : 'gone';
    else if (run.status?.phase === 'Succeeded' || run.status?.phase === 'Failed') {
      const st = await containerState(o.store, rec.id);
      if (st.state === 'running' || st.state === 'lost') why = 'terminal';
    }
    if (!why) continue;
    o.log.warn({ run: runName, id: rec.id, why }, 'recovery: stopping and removing a container the API no longer wants here');
    await removeContainer(o.store, rec.id, { force: true, graceMs: o.graceMs });
    report.removed.push({ id: rec.id, run: runName, why });
  }
  // Volumes (Secret tmpfs mounts included) of runs no longer here, user namespace or not.
  const volumesRoot = dirname(runVolumesDir(o.store.root, 'x'));
  for (const uid of await readdir(volumesRoot).catch(() => [] as string[])) {
    if (liveUids.has(uid) || o.userns.held().has(uid)) continue;
    await releaseVolumes(runVolumesDir(o.store.root, uid));
  }
  for (const uid of o.userns.held().keys()) {
    if (liveUids.has(uid)) continue;
    await releaseVolumes(runVolumesDir(o.store.root, uid));
    const idMap = o.userns.lookup(uid);
    if (idMap) await o.store.removeSnapshotsFor(idMap);
    await o.userns.release(uid);
    report.released.push(uid);
  }
  return report;
}
