/**
 * The node agent process: a heartbeat Lease for this node and the ContainerRun reconciler for
 * runs bound to it, in one Manager (health and metrics server, clean shutdown). There is no leader
 * election: each node has exactly one agent, and the Lease is its presence, not a lock.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { isNotFound, KubeClient } from '../k8s/runtime/client.js';
import { Controller } from '../k8s/runtime/controller.js';
import { EventRecorder } from '../k8s/runtime/events.js';
import { Manager } from '../k8s/runtime/manager.js';
import { ControllerMetrics } from '../k8s/runtime/metrics.js';
import type { WorkQueueOptions } from '../k8s/runtime/queue.js';
import { DEFAULT_STOP_GRACE_MS } from '../runtime/lifecycle/stop.js';
import type { RuntimeName } from '../runtime/oci-runtime.js';
import type { ImageStore } from '../runtime/store/index.js';
import type { Policy } from '../policy/types.js';
import { errorMessage } from '../util/errors.js';
import { Heartbeat } from './heartbeat.js';
import { AGENT_TAINTED_LABEL } from '../k8s/api/containerrun.js';
import { reservingTaints, type NodeTaint } from './privileges.js';
import { ContainerRunAgentReconciler, type LaunchContainer } from './reconciler.js';
import { recoverNode } from './recovery.js';
import { PullRecords } from './pull-records.js';
import { DEFAULT_BLOCK_SIZE, nodeIdPool, UserNamespaceAllocator } from './userns.js';
import { assertStoreReachable } from './store-reach.js';
import type { IdRange } from '../runtime/idmap.js';

export interface AgentOptions {
  kubeConfig: KubeConfig;
  nodeName: string;
  /** Namespace of the heartbeat Lease (the controller's). */
  leaseNamespace: string;
  /** Extra node labels (merged over the Node object's, when the agent may read it). */
  nodeLabels?: Record<string, string>;
  /** Read the Node object's labels (needs `get nodes`); default true. */
  readNodeLabels?: boolean;
  leaseDurationSeconds?: number;
  renewMs?: number;
  store: ImageStore;
  /** How a container is started (default: the runtime's detached monitor). */
  launch?: LaunchContainer;
  runtime?: RuntimeName;
  stopGraceSeconds?: number;
  restartBackoff?: { baseMs: number; maxMs: number };
  pollMs?: number;
  /** Watch only this namespace (default all). */
  namespace?: string;
  metricsAddr?: string;
  workers?: number;
  queue?: WorkQueueOptions;
  processMetrics?: boolean;
  /** The node's containers-policy.json (`--policy`); none: every image may run. */
  policy?: Policy;
  /**
   * Ids a root agent hands out for the runs' user namespaces (default 65536:67108864); a rootless
   * agent uses the subordinate ids of its own user namespace instead.
   */
  usernsRange?: IdRange;
  /** Ids per run (default 65536). */
  usernsSize?: number;
  /** How often disk emptyDirs are measured against their sizeLimit (default 10 s). */
  diskCheckMs?: number;
  log: Logger;
}

/**
 * The Node object's labels, plus AGENT_TAINTED_LABEL when it is tainted to keep workloads off, or
 * none when it does not exist or may not be read.
 */
async function nodeLabels(client: KubeClient, node: string, log: Logger): Promise<Record<string, string>> {
  try {
    const n = await client.get<{ metadata: { labels?: Record<string, string> }; spec?: { taints?: NodeTaint[] } }>(`/api/v1/nodes/${encodeURIComponent(node)}`);
    return { ...n.metadata.labels, ...(reservingTaints(n.spec?.taints).length > 0 ? { [AGENT_TAINTED_LABEL]: 'true' } : {}) };
  } catch (err) {
    if (!isNotFound(err)) log.warn({ node, err: errorMessage(err) }, 'cannot read the Node object; using --node-labels only');
    return {};
  }
}

export async function createAgent(o: AgentOptions): Promise<Manager> {
  const client = new KubeClient(o.kubeConfig);
  const log = o.log.child({ node: o.nodeName });
  const labels = { ...(o.readNodeLabels === false ? {} : await nodeLabels(client, o.nodeName, log)), ...o.nodeLabels };
  const metrics = new ControllerMetrics({ processMetrics: o.processMetrics ?? true });
  const manager = new Manager(client, { metricsAddr: o.metricsAddr, metrics, log });
  manager.add(
    new Heartbeat(client, {
      namespace: o.leaseNamespace,
      nodeName: o.nodeName,
      labels,
      leaseDurationSeconds: o.leaseDurationSeconds,
      renewMs: o.renewMs,
      log,
    }),
  );
  const pool = await nodeIdPool(o.usernsRange);
  // Before anything is started: a store the runs' ids cannot reach would fail every run in runc.
  await assertStoreReachable(o.store.root, pool);
  const userns = await UserNamespaceAllocator.open(o.store.root, pool, o.usernsSize ?? DEFAULT_BLOCK_SIZE);
  log.info({ pool: pool.map((r) => `${r.start}:${r.count}`), blockSize: userns.blockSize, held: userns.held().size }, 'user namespace ids for runs');
  // Before any run is taken: containers the API no longer wants on this node go.
  const recovered = await recoverNode({
    client,
    store: o.store,
    nodeName: o.nodeName,
    namespace: o.namespace,
    userns,
    graceMs: o.stopGraceSeconds === undefined ? DEFAULT_STOP_GRACE_MS : o.stopGraceSeconds * 1000,
    log,
  });
  if (recovered.removed.length + recovered.released.length > 0) log.info({ removed: recovered.removed, released: recovered.released.length }, 'recovery done');
  const events = new EventRecorder(client, { controller: 'stevedore.dev/agent', instance: o.nodeName, log });
  const reconciler = new ContainerRunAgentReconciler(client, {
    nodeName: o.nodeName,
    store: o.store,
    launch: o.launch,
    runtime: o.runtime,
    stopGraceSeconds: o.stopGraceSeconds,
    restartBackoff: o.restartBackoff,
    pollMs: o.pollMs,
    policy: o.policy,
    userns,
    diskCheckMs: o.diskCheckMs,
    pullRecords: await PullRecords.open(o.store.root),
    events,
    log,
  });
  manager.add(new Controller(client, reconciler, { namespace: o.namespace, workers: o.workers ?? 4, queue: o.queue, metrics, log }));
  return manager;
}
