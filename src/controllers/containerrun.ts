/**
 * The ContainerRun controller (in `stevedore controller`): it schedules and watches over runs,
 * and the node agent does the running. Its steps run on the one reconcile skeleton
 * (k8s/runtime/reconcile.ts): terminal → stop, image → valid, bind/schedule, watch the node's
 * heartbeat, fail over; the skeleton reads the run, keeps the finalizer, judges errors (an image
 * reference that can never be pulled stalls the run: Failed, Stalled=True with the engine code) and
 * sends one status patch, guarded by resourceVersion since the agent writes the same status.
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
import {
  boundNode,
  CONTAINER_RUN_FINALIZER,
  CONTAINER_RUN_RESOURCE,
  type ContainerRun,
  type ContainerRunReason,
  type ContainerRunStatus,
} from '../k8s/api/containerrun.js';
import { markStalled } from '../k8s/conditions.js';
import type { KubeClient } from '../k8s/runtime/client.js';
import type { ReconcileRequest, ReconcileResult, Reconciler } from '../k8s/runtime/controller.js';
import type { EventRecorder } from '../k8s/runtime/events.js';
import { objectKey } from '../k8s/runtime/informer.js';
import { ReconcileLoop, type ReconcileScope } from '../k8s/runtime/reconcile.js';
import { parseReference } from '../oci/reference.js';
import { AgentDirectory, pickNode } from './containerrun-nodes.js';
import { rfc3339Seconds } from '../util/time.js';

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

/** Status keys this controller writes (the agent writes these and more; the patch is guarded). */
const STATUS_KEYS = ['nodeName', 'phase', 'reason', 'message', 'observedGeneration', 'conditions', 'restartCount', 'finishedAt'] as const;

/** The run's reasons, and the Event the controller records when it moves a run to another node. */
type Reason = ContainerRunReason | 'Rescheduled';
type Scope = ReconcileScope<ContainerRun, ContainerRunStatus, Reason>;

export class ContainerRunReconciler implements Reconciler<ContainerRun> {
  readonly name = 'containerrun';
  readonly resource = CONTAINER_RUN_RESOURCE;
  readonly #o: ContainerRunReconcilerOptions;
  readonly #agents: AgentDirectory;
  readonly #loop: ReconcileLoop<ContainerRun, ContainerRunStatus, Reason>;
  /** Active (non-terminal) runs per node, from what this controller has seen: for spreading. */
  readonly #boundTo = new Map<string, string>();
  /** When each run was first seen on a lost node (for failover after the grace period). */
  readonly #lostSince = new Map<string, number>();

  constructor(client: KubeClient, o: ContainerRunReconcilerOptions) {
    this.#o = o;
    this.#agents = new AgentDirectory(client, o.agentNamespace);
    this.#loop = new ReconcileLoop(client, o.events, {
      kind: 'ContainerRun',
      resource: CONTAINER_RUN_RESOURCE,
      finalizer: CONTAINER_RUN_FINALIZER,
      statusKeys: STATUS_KEYS,
      // The agent writes status too: read the run fresh, and a write from a stale read conflicts.
      readFromCache: false,
      guardStatus: true,
      eventAction: 'Schedule',
      steps: [(s) => this.#terminal(s), (s) => this.#validImage(s), (s) => this.#bind(s), (s) => this.#watchNode(s)],
      finalize: (run) => this.#finalize(run),
      onStalled: (status, reason, message) => {
        status.phase = 'Failed';
        status.reason = reason;
        status.message = message;
        status.finishedAt = rfc3339Seconds();
      },
      gone: (req) => this.#forget(`${req.namespace}/${req.name}`),
    });
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

  reconcile(req: ReconcileRequest<ContainerRun>, signal: AbortSignal): Promise<ReconcileResult> {
    return this.#loop.run(req, signal);
  }

  get #nodeCheckMs(): number {
    return this.#o.nodeCheckMs ?? 5_000;
  }

  #forget(key: string): void {
    this.#boundTo.delete(key);
    this.#lostSince.delete(key);
  }

  #load(): Map<string, number> {
    const load = new Map<string, number>();
    for (const node of this.#boundTo.values()) load.set(node, (load.get(node) ?? 0) + 1);
    return load;
  }

  /**
   * Deletion: a live agent kills the container and releases the run itself (a finished run has
   * nothing running but its agent still removes the container and its log); otherwise it goes now.
   */
  async #finalize(run: ContainerRun): Promise<ReconcileResult | undefined> {
    const node = boundNode(run);
    const agent = node ? await this.#agents.get(node) : undefined;
    if (agent?.live) return { requeueAfterMs: this.#nodeCheckMs };
    this.#boundTo.delete(objectKey(run));
    return undefined;
  }

  /** A finished run needs nothing more from the controller. */
  async #terminal(s: Scope): Promise<ReconcileResult | undefined> {
    if (!s.before.phase || !TERMINAL.has(s.before.phase)) return undefined;
    this.#forget(objectKey(s.obj));
    return {};
  }

  /**
   * An image reference no agent could ever pull (the rule the agent's pull applies) stalls the run
   * here, before it is bound: the engine's InvalidInputError is final, and the skeleton maps it.
   */
  async #validImage(s: Scope): Promise<undefined> {
    if (!s.before.nodeName && !s.obj.spec.nodeName) parseReference(s.obj.spec.image.replace(/^docker:\/\//, ''));
    return undefined;
  }

  /** Unbound: schedule it; bound by spec.nodeName: tell the agent (and kubectl) through status as well. */
  async #bind(s: Scope): Promise<ReconcileResult | undefined> {
    const { obj: run, status, generation: gen } = s;
    const node = boundNode(run);
    if (!node) return this.#schedule(s);
    this.#boundTo.set(objectKey(run), node);
    if (!s.before.nodeName) {
      status.nodeName = node;
      status.phase = 'Pending';
      status.reason = 'Scheduled';
      status.message = `bound to node ${node} by spec.nodeName`;
      status.observedGeneration = gen;
      s.reconciling('Scheduled', `bound to node ${node}`);
    }
    return undefined;
  }

  async #schedule(s: Scope): Promise<ReconcileResult> {
    const { obj: run, status, generation: gen } = s;
    const nodes = await this.#agents.list();
    const chosen = pickNode(nodes, run.spec.nodeSelector, this.#load());
    if (!chosen) {
      const live = nodes.filter((n) => n.live).length;
      const message = run.spec.nodeSelector
        ? `no live node agent matches nodeSelector ${JSON.stringify(run.spec.nodeSelector)} (${live} live agents)`
        : 'no live node agent';
      if (status.reason !== 'Unschedulable' || status.message !== message) {
        status.phase = 'Pending';
        status.reason = 'Unschedulable';
        status.message = message;
        status.observedGeneration = gen;
        s.reconciling('Unschedulable', message);
        await s.progress();
        await s.event('Warning', 'Unschedulable', message);
      }
      return { requeueAfterMs: this.#o.unschedulableRetryMs ?? 10_000 };
    }
    status.nodeName = chosen.node;
    status.phase = 'Pending';
    status.reason = 'Scheduled';
    status.message = `bound to node ${chosen.node}`;
    status.observedGeneration = gen;
    s.reconciling('Scheduled', `bound to node ${chosen.node}`);
    await s.progress();
    this.#boundTo.set(objectKey(run), chosen.node);
    await s.event('Normal', 'Scheduled', `bound to node ${chosen.node}`);
    return { requeueAfterMs: this.#nodeCheckMs };
  }

  /**
   * A bound run whose agent is live is checked again later; one whose agent is gone (or never came)
   * is Unknown now, and failed over after the grace period. The phase judged is the one read: a
   * run bound by spec.nodeName in this very reconcile to a node without agent is marked Unknown too.
   */
  async #watchNode(s: Scope): Promise<ReconcileResult> {
    const { obj: run, status } = s;
    const node = boundNode(run)!;
    const key = objectKey(run);
    const phase = s.before.phase;
    const agent = await this.#agents.get(node);
    if (agent?.live) {
      this.#lostSince.delete(key);
      return { requeueAfterMs: this.#nodeCheckMs };
    }
    const since = this.#lostSince.get(key) ?? Date.now();
    this.#lostSince.set(key, since);
    const why = agent ? `the agent on node ${node} stopped heartbeating` : `no agent has announced node ${node}`;
    if (phase !== 'Unknown' && phase !== 'Pending') {
      status.phase = 'Unknown';
      status.reason = 'NodeLost';
      status.message = `${why}; the run's state is unknown`;
      s.reconciling('NodeLost', `${why}; the run's state is unknown`);
      await s.progress();
      await s.event('Warning', 'NodeLost', why);
    }
    const left = since + (this.#o.failoverAfterMs ?? 60_000) - Date.now();
    if (left > 0) return { requeueAfterMs: Math.min(left, this.#nodeCheckMs) };
    if (phase === 'Pending') {
      // Nothing runs yet: a run pinned by spec.nodeName waits for its node; any other moves.
      if (run.spec.nodeName) return { requeueAfterMs: this.#nodeCheckMs };
      this.#forget(key);
      delete status.nodeName;
      status.reason = 'NodeLost';
      status.message = `${why}; scheduling again`;
      return { requeueAfterMs: 0 };
    }
    return this.#failOver(s, node, why);
  }

  /** restartPolicy OnFailure within backoffLimit: unbound, to be scheduled again; otherwise Failed. */
  async #failOver(s: Scope, node: string, why: string): Promise<ReconcileResult> {
    const { obj: run, status, generation: gen } = s;
    const key = objectKey(run);
    const restarts = s.before.restartCount ?? 0;
    const limit = run.spec.backoffLimit ?? DEFAULT_BACKOFF_LIMIT;
    this.#lostSince.delete(key);
    if (run.spec.restartPolicy === 'OnFailure' && !run.spec.nodeName && restarts < limit) {
      const message = `${why}; attempt ${restarts + 1} is given up and the run rescheduled (${restarts + 1} of ${limit} restarts)`;
      delete status.nodeName;
      status.phase = 'Pending';
      status.reason = 'NodeLost';
      status.message = message;
      status.restartCount = restarts + 1;
      s.reconciling('NodeLost', message);
      await s.progress();
      this.#boundTo.delete(key);
      await s.event('Warning', 'Rescheduled', message);
      return { requeueAfterMs: 0 };
    }
    const exhausted = run.spec.restartPolicy === 'OnFailure' && restarts >= limit;
    const reason = exhausted ? 'BackoffLimitExceeded' : 'NodeLost';
    const message = `${why}; the run on ${node} is failed${exhausted ? ` after ${restarts + 1} attempts` : ''}`;
    status.phase = 'Failed';
    status.reason = reason;
    status.message = message;
    status.finishedAt = rfc3339Seconds();
    // Stalled, Ready=False: the skeleton records the Warning Event of that Ready transition.
    status.conditions = markStalled(status.conditions, gen, reason, message);
    this.#boundTo.delete(key);
    return {};
  }
}
