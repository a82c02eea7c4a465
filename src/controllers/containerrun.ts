/**
 * The ContainerRun controller (in `stevedore controller`): it schedules and watches over runs,
 * and the node agent does the running. In Flux's shape: get → deletion/finalizer → bind → watch
 * the node's heartbeat → one status patch per change.
 *
 * - An unbound run is bound to a live agent whose node labels match its nodeSelector (the one with
 *   the fewest active runs); from then on the agent owns its status.
 * - A bound run whose agent's Lease has expired is marked Unknown (NodeLost); after
 *   `failoverAfterMs` it is failed over per restartPolicy: Never → Failed, OnFailure → unbound
 *   with restartCount+1 (so it is scheduled again), until backoffLimit → Failed.
 * - A deleted run is released here only when no live agent can do it (never bound, or its node
 *   is lost); otherwise its agent kills the container first and then releases it.
 */
import type { Logger } from 'pino';
import { API_VERSION, GROUP, VERSION } from '../k8s/api/common.js';
import { CONTAINER_RUN_FINALIZER, type ContainerRun, type ContainerRunStatus } from '../k8s/api/containerrun.js';
import { markReconciling, markStalled } from '../k8s/conditions.js';
import { isNotFound, resourcePath, type KubeClient, type ResourcePath } from '../k8s/runtime/client.js';
import type { ReconcileRequest, ReconcileResult, Reconciler } from '../k8s/runtime/controller.js';
import type { EventRecorder } from '../k8s/runtime/events.js';
import { AgentDirectory, pickNode } from './containerrun-nodes.js';

export const CONTAINER_RUN_RESOURCE: ResourcePath = { group: GROUP, version: VERSION, plural: 'containerruns' };

export interface ContainerRunReconcilerOptions {
  /** Namespace of the agents' heartbeat Leases (the controller's own). */
  agentNamespace: string;
  /** How often a bound run's node heartbeat is checked (default 5 s). */
  nodeCheckMs?: number;
  /** How long a run stays Unknown before it is failed over (default 60 s). */
  failoverAfterMs?: number;
  /** Retry interval while no node fits (default 10 s). */
  unschedulableRetryMs?: number;
  events: EventRecorder;
  log: Logger;
}

const TERMINAL = new Set(['Succeeded', 'Failed']);
const DEFAULT_BACKOFF_LIMIT = 3;

export class ContainerRunReconciler implements Reconciler<ContainerRun> {
  readonly name = 'containerrun';
  readonly resource = CONTAINER_RUN_RESOURCE;
  readonly #client: KubeClient;
  readonly #o: ContainerRunReconcilerOptions;
  readonly #agents: AgentDirectory;
  /** Active (non-terminal) runs per node, from what this controller has seen: for spreading. */
  readonly #boundTo = new Map<string, string>();
  /** When each run was first seen on a lost node (for failover after the grace period). */
  readonly #lostSince = new Map<string, number>();

  constructor(client: KubeClient, o: ContainerRunReconcilerOptions) {
    this.#client = client;
    this.#o = o;
    this.#agents = new AgentDirectory(client, o.agentNamespace);
  }

  /** The agent's frequent status writes (log tail) need no scheduling decision. */
  shouldEnqueueUpdate(a: ContainerRun, b: ContainerRun): boolean {
    return (
      a.metadata.generation !== b.metadata.generation ||
      a.status?.nodeName !== b.status?.nodeName ||
      a.status?.phase !== b.status?.phase ||
      (!a.metadata.deletionTimestamp && !!b.metadata.deletionTimestamp)
    );
  }

  #path(run: ContainerRun, sub?: string): string {
    return resourcePath(CONTAINER_RUN_RESOURCE, run.metadata.namespace, run.metadata.name, sub);
  }

  #load(): Map<string, number> {
    const load = new Map<string, number>();
    for (const node of this.#boundTo.values()) load.set(node, (load.get(node) ?? 0) + 1);
    return load;
  }

  async reconcile(req: ReconcileRequest): Promise<ReconcileResult> {
    const key = `${req.namespace}/${req.name}`;
    let run: ContainerRun;
    try {
      run = await this.#client.get<ContainerRun>(resourcePath(CONTAINER_RUN_RESOURCE, req.namespace, req.name));
    } catch (err) {
      if (isNotFound(err)) {
        this.#boundTo.delete(key);
        this.#lostSince.delete(key);
        return {};
      }
      throw err;
    }
    const status = run.status ?? {};
    const node = run.spec.nodeName ?? status.nodeName;
    const finalizers = run.metadata.finalizers ?? [];

    if (run.metadata.deletionTimestamp) {
      if (!finalizers.includes(CONTAINER_RUN_FINALIZER)) return {};
      const agent = node ? await this.#agents.get(node) : undefined;
      // A live agent kills the container and releases the run itself; a finished run has nothing
      // running but its agent still removes the container and its log.
      if (agent?.live) return { requeueAfterMs: this.#o.nodeCheckMs ?? 5_000 };
      await this.#setFinalizers(run, finalizers.filter((f) => f !== CONTAINER_RUN_FINALIZER));
      this.#boundTo.delete(key);
      return {};
    }
    if (status.phase && TERMINAL.has(status.phase)) {
      this.#boundTo.delete(key);
      this.#lostSince.delete(key);
      return {};
    }
    if (!finalizers.includes(CONTAINER_RUN_FINALIZER)) run = await this.#setFinalizers(run, [...finalizers, CONTAINER_RUN_FINALIZER]);

    const gen = run.metadata.generation ?? 0;
    if (!node) return this.#schedule(run, key);
    this.#boundTo.set(key, node);
    if (!status.nodeName) {
      // spec.nodeName: bound by the user; tell the agent (and kubectl) through status as well.
      await this.#patchStatus(run, {
        nodeName: node,
        phase: 'Pending',
        reason: 'Scheduled',
        message: `bound to node ${node} by spec.nodeName`,
        observedGeneration: gen,
        conditions: markReconciling(status.conditions, gen, 'Scheduled', `bound to node ${node}`),
      });
    }

    const agent = await this.#agents.get(node);
    if (agent?.live) {
      this.#lostSince.delete(key);
      return { requeueAfterMs: this.#o.nodeCheckMs ?? 5_000 };
    }
    // The node's agent is gone (or never came): Unknown now, failover after the grace period.
    const since = this.#lostSince.get(key) ?? Date.now();
    this.#lostSince.set(key, since);
    const why = agent ? `the agent on node ${node} stopped heartbeating` : `no agent has announced node ${node}`;
    if (status.phase !== 'Unknown' && status.phase !== 'Pending') {
      await this.#patchStatus(run, {
        phase: 'Unknown',
        reason: 'NodeLost',
        message: `${why}; the run's state is unknown`,
        conditions: markReconciling(status.conditions, gen, 'NodeLost', `${why}; the run's state is unknown`),
      });
      await this.#event(run, 'Warning', 'NodeLost', why);
    }
    const failover = this.#o.failoverAfterMs ?? 60_000;
    const left = since + failover - Date.now();
    if (left > 0) return { requeueAfterMs: Math.min(left, this.#o.nodeCheckMs ?? 5_000) };
    if (status.phase === 'Pending') {
      // Nothing runs yet: a run pinned by spec.nodeName waits for its node; any other moves.
      if (run.spec.nodeName) return { requeueAfterMs: this.#o.nodeCheckMs ?? 5_000 };
      this.#lostSince.delete(key);
      this.#boundTo.delete(key);
      await this.#patchStatus(run, { nodeName: null, reason: 'NodeLost', message: `${why}; scheduling again` });
      return { requeueAfterMs: 0 };
    }
    return this.#failOver(run, key, node, why);
  }

  async #schedule(run: ContainerRun, key: string): Promise<ReconcileResult> {
    const gen = run.metadata.generation ?? 0;
    const status = run.status ?? {};
    const nodes = await this.#agents.list();
    const chosen = pickNode(nodes, run.spec.nodeSelector, this.#load());
    if (!chosen) {
      const live = nodes.filter((n) => n.live).length;
      const message = run.spec.nodeSelector
        ? `no live node agent matches nodeSelector ${JSON.stringify(run.spec.nodeSelector)} (${live} live agents)`
        : 'no live node agent';
      if (status.reason !== 'Unschedulable' || status.message !== message) {
        await this.#patchStatus(run, {
          phase: 'Pending',
          reason: 'Unschedulable',
          message,
          observedGeneration: gen,
          conditions: markReconciling(status.conditions, gen, 'Unschedulable', message),
        });
        await this.#event(run, 'Warning', 'Unschedulable', message);
      }
      return { requeueAfterMs: this.#o.unschedulableRetryMs ?? 10_000 };
    }
    await this.#patchStatus(run, {
      nodeName: chosen.node,
      phase: 'Pending',
      reason: 'Scheduled',
      message: `bound to node ${chosen.node}`,
      observedGeneration: gen,
      conditions: markReconciling(status.conditions, gen, 'Scheduled', `bound to node ${chosen.node}`),
    });
    this.#boundTo.set(key, chosen.node);
    await this.#event(run, 'Normal', 'Scheduled', `bound to node ${chosen.node}`);
    return { requeueAfterMs: this.#o.nodeCheckMs ?? 5_000 };
  }

  async #failOver(run: ContainerRun, key: string, node: string, why: string): Promise<ReconcileResult> {
    const gen = run.metadata.generation ?? 0;
    const status = run.status ?? {};
    const restarts = status.restartCount ?? 0;
    const limit = run.spec.backoffLimit ?? DEFAULT_BACKOFF_LIMIT;
    this.#lostSince.delete(key);
    if (run.spec.restartPolicy === 'OnFailure' && !run.spec.nodeName && restarts < limit) {
      const message = `${why}; attempt ${restarts + 1} is given up and the run rescheduled (${restarts + 1} of ${limit} restarts)`;
      await this.#patchStatus(run, {
        nodeName: null,
        phase: 'Pending',
        reason: 'NodeLost',
        message,
        restartCount: restarts + 1,
        conditions: markReconciling(status.conditions, gen, 'NodeLost', message),
      });
      this.#boundTo.delete(key);
      await this.#event(run, 'Warning', 'Rescheduled', message);
      return { requeueAfterMs: 0 };
    }
    const exhausted = run.spec.restartPolicy === 'OnFailure' && restarts >= limit;
    const reason = exhausted ? 'BackoffLimitExceeded' : 'NodeLost';
    const message = `${why}; the run on ${node} is failed${exhausted ? ` after ${restarts + 1} attempts` : ''}`;
    await this.#patchStatus(run, {
      phase: 'Failed',
      reason,
      message,
      finishedAt: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
      conditions: markStalled(status.conditions, gen, reason, message),
    });
    this.#boundTo.delete(key);
    await this.#event(run, 'Warning', reason, message);
    return {};
  }

  #setFinalizers(run: ContainerRun, finalizers: string[]): Promise<ContainerRun> {
    return this.#client.patch<ContainerRun>(this.#path(run), { metadata: { finalizers, resourceVersion: run.metadata.resourceVersion } });
  }

  async #patchStatus(run: ContainerRun, status: Partial<Record<keyof ContainerRunStatus, unknown>>): Promise<void> {
    try {
      // Guarded by resourceVersion: the agent owns status once bound, and a stale write must not win.
      const updated = await this.#client.patch<ContainerRun>(this.#path(run, 'status'), {
        metadata: { resourceVersion: run.metadata.resourceVersion },
        status,
      });
      run.status = updated.status;
      run.metadata.resourceVersion = updated.metadata.resourceVersion;
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
  }

  async #event(run: ContainerRun, type: 'Normal' | 'Warning', reason: string, note: string): Promise<void> {
    await this.#o.events.record({ ...run, apiVersion: API_VERSION, kind: 'ContainerRun' }, type, reason, note, 'Schedule');
  }
}
