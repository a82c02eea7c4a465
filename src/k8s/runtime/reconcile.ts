/**
 * The one reconcile skeleton (Flux's summarize.Helper + SerialPatcher, in our words). A kind gives
 * its resource, finalizer, status keys and an ordered list of steps; the skeleton does the rest the
 * same way for every kind:
 *
 * 1. get: the informer's copy (no GET per reconcile), or a GET when the cache has none; gone → done;
 * 2. deletion: `finalize` (the kind's cleanup, if any; it may ask to come back later), then the
 *    finalizer is removed; no status; otherwise the finalizer is added first;
 * 3. the steps run in order on a copy of status; a step returns nothing to go on, or a result to
 *    stop there (`{}`, or `{ requeueAfterMs }`);
 * 4. an error a step throws is judged once (reconcile-errors.ts): Stalled (StallingError, or an
 *    engine error that can never succeed, reason its `code`), Ready=False (ReconcileError,
 *    WaitingError), or not the object's fault (left as is, or `unknownErrorReason`);
 * 5. ONE deferred status patch: a merge patch on /status of the kind's status keys (absent keys as
 *    null, so they are removed), sent only when status changed; a step may `progress()` earlier to
 *    say work is under way before a long part, through the same patch;
 * 6. an Event when the Ready condition changes (Warning unless it became True).
 *
 * Reasons are the kind's union (`R`): what a step writes and throws through `scope` is checked by
 * the compiler. A Stalled reason may also be an engine error's code, which no union lists.
 *
 * What one step learns for the later ones of the same reconcile (the build Pods listed, the attempt
 * being started) goes in `scope.ctx`, of the kind's type `C`: the kind's `newContext` makes a fresh
 * one before the first step of every reconcile, so nothing carries over from one run to the next.
 *
 * A second owner of a kind's status (the node agent for ContainerRun) uses the same skeleton with
 * `precheck` (objects that are not its own), `addFinalizer: false` (the controller adds it) and
 * `transitionEvents: false` (its steps record their own Events).
 */
import { isDeepStrictEqual } from 'node:util';
import type { V1ObjectMeta } from '@kubernetes/client-node';
import { API_VERSION, RECONCILE_REQUESTED_AT_ANNOTATION } from '../api/common.js';
import { getCondition, markReady, markReconciling, markStalled } from '../conditions.js';
import { isNotFound, resourcePath, type KubeClient, type ResourcePath } from './client.js';
import type { ReconcileRequest, ReconcileResult } from './controller.js';
import { ReconcileError, StallingError, WaitingError } from './errors.js';
import type { EventRecorder } from './events.js';
import { applyVerdict, judgeReconcileError, type VerdictStatus } from './reconcile-errors.js';

/** The status fields every kind has (kstatus): the ones a judged error writes. */
export type KindStatus = VerdictStatus;

export interface KindObject<S extends KindStatus> {
  metadata: V1ObjectMeta;
  status?: S;
}

/** What a step sees: the object as read, the status it mutates, and typed ways to write reasons. */
export interface ReconcileScopeBase<T extends KindObject<S>, S extends KindStatus, R extends string> {
  readonly obj: T;
  /** The status being built; patched once when the reconcile ends. */
  readonly status: S;
  /** Status as read (do not change). */
  readonly before: Readonly<S>;
  readonly generation: number;
  /** The reconcile-requested annotation's value, if any (`stevedore reconcile`, `flux reconcile`'s twin). */
  readonly requested: string | undefined;
  readonly signal: AbortSignal;
  /** Ready=True/False with `reason`; Reconciling and Stalled removed. */
  ready(ok: boolean, reason: R, message: string): void;
  /** Reconciling=True, Ready=Unknown: work under way. */
  reconciling(reason: R, message: string): void;
  /** Stalled=True, Ready=False with `reason`: final for this generation (a step that decides so itself). */
  stalled(reason: R, message: string): void;
  /** Patches status now if it changed (before a long part, so the world sees Reconciling). */
  progress(): Promise<void>;
  /** Records an Event about the object (best effort). */
  event(type: 'Normal' | 'Warning', reason: R, note: string): Promise<void>;
}

/** A step's scope, with this reconcile's own state (`ctx`, made by the kind's `newContext`). */
export interface ReconcileScope<T extends KindObject<S>, S extends KindStatus, R extends string, C = undefined> extends ReconcileScopeBase<T, S, R> {
  /** This reconcile's state, shared by its steps (mutable inside); fresh for every reconcile. */
  readonly ctx: C;
}

/** A step mutates `scope.status`; it returns nothing to go on, or the reconcile's result to stop there. */
export type Step<T extends KindObject<S>, S extends KindStatus, R extends string, C = undefined> = (
  scope: ReconcileScope<T, S, R, C>,
) => Promise<ReconcileResult | undefined>;

/**
 * How a kind makes its per-reconcile context: required when `C` cannot be undefined (a kind that
 * declares a context must make it), optional otherwise (no context: `ctx` is undefined).
 */
export type ContextMaker<T extends KindObject<S>, S extends KindStatus, R extends string, C> = undefined extends C
  ? { newContext?(scope: ReconcileScopeBase<T, S, R>): C }
  : {
      /** Called once per reconcile, after the finalizer is in place and before the first step. */
      newContext(scope: ReconcileScopeBase<T, S, R>): C;
    };

/** A kind for the skeleton: its resource, finalizer, status keys, steps and hooks; `C` is its per-reconcile context (none by default). */
export type ReconcileKind<T extends KindObject<S>, S extends KindStatus, R extends string, C = undefined> = ReconcileKindBase<T, S, R, C> &
  ContextMaker<T, S, R, C>;

export interface ReconcileKindBase<T extends KindObject<S>, S extends KindStatus, R extends string, C = undefined> {
  /** The kind's name, for Events (`ImageMirror`). */
  kind: string;
  resource: ResourcePath;
  finalizer: string;
  /** Status keys this controller owns: the only ones the patch sends. */
  statusKeys: readonly (keyof S & string)[];
  steps: readonly Step<T, S, R, C>[];
  /**
   * Cleanup on deletion, before the finalizer goes (e.g. delete the Pods). A result instead keeps
   * the finalizer and comes back after it (the node's agent still runs the container). Default: nothing.
   */
  finalize?(obj: T): Promise<ReconcileResult | undefined>;
  /**
   * Ready=False with this reason when a step fails with an error that is not the object's (an API
   * hiccup, a reset connection). Default: conditions stay as they were.
   */
  unknownErrorReason?: R;
  /** Read the informer's copy when there is one (default true); false reads every object with a GET. */
  readFromCache?: boolean;
  /**
   * Guard status patches with the object's resourceVersion (default false): when another writer
   * shares the status (the ContainerRun controller and the node's agent), a write from a stale read
   * fails with a conflict and is retried instead of winning.
   */
  guardStatus?: boolean;
  /** The action of the kind's Events (default `Reconcile`; ContainerRun's controller says `Schedule`). */
  eventAction?: string;
  /**
   * Called after the error mapping stalled the object, to write the kind's own terminal fields
   * beside the conditions (ContainerRun: phase Failed, its reason and message), in the same patch.
   */
  onStalled?(status: S, reason: string, message: string): void;
  /** Called when the object is gone (not found), to forget what the kind keeps about it. */
  gone?(req: { namespace: string; name: string }): void;
  /**
   * Looked at before deletion and finalizers: a result ends the reconcile there, with no status
   * patch (the node agent hands runs bound to other nodes to `release` instead). Default: go on.
   */
  precheck?(obj: T): Promise<ReconcileResult | undefined>;
  /**
   * Add the finalizer when it is missing (default true). False for a second owner of the kind (the
   * node agent), which removes the finalizer on deletion but leaves adding it to the controller.
   */
  addFinalizer?: boolean;
  /**
   * Record an Event when the Ready condition changes (default true). False for a kind whose steps
   * record their own Events (the node agent: Started, BackOff, Completed, ...).
   */
  transitionEvents?: boolean;
  /**
   * Called after `onStalled`, before the status patch, for what a stalled object needs beyond its
   * status (an Event of the kind's own, releasing what it held). Default: nothing.
   */
  afterStalled?(obj: T, status: S, reason: string, message: string): Promise<void>;
}

/** Typed errors for a kind's reasons: `errorsFor<ImageMirrorReason>().failed('SyncFaild', …)` does not compile. */
export function errorsFor<R extends string>() {
  const opts = (cause: unknown) => (cause === undefined ? {} : { cause });
  return {
    /** Ready=False with `reason`, retried with backoff. */
    failed: (reason: R, message: string, cause?: unknown) => new ReconcileError(reason, message, opts(cause)),
    /** Stalled=True with `reason`: not retried until the spec changes. */
    stalled: (reason: R, message: string, cause?: unknown) => new StallingError(reason, message, opts(cause)),
    /** Ready=False with `reason`, retried after `afterMs`. */
    waiting: (reason: R, message: string, afterMs: number) => new WaitingError(reason, message, afterMs),
  };
}

/** The reconcile request annotation has been handled (or there is none). */
export function requestHandled(status: KindStatus, requested: string | undefined): boolean {
  return requested === undefined || requested === status.lastHandledReconcileAt;
}

/**
 * Stalled for this generation and no new reconcile request: the same spec cannot succeed, so a
 * resync or a restarted controller does not try it again; a spec change or a request does.
 */
export function stalledForGeneration(status: KindStatus, generation: number, requested: string | undefined): boolean {
  const stalled = getCondition(status.conditions, 'Stalled');
  return stalled?.status === 'True' && stalled.observedGeneration === generation && requestHandled(status, requested);
}

/** A step that ends the reconcile while `stalledForGeneration` holds (it needs no context: fits any kind's). */
export function stopWhenStalled<T extends KindObject<S>, S extends KindStatus, R extends string>(): Step<T, S, R, unknown> {
  return async (s) => (stalledForGeneration(s.status, s.generation, s.requested) ? {} : undefined);
}

/** Runs a kind's steps in the skeleton; a Reconciler's `reconcile` delegates to `run`. */
export class ReconcileLoop<T extends KindObject<S>, S extends KindStatus, R extends string, C = undefined> {
  readonly #client: KubeClient;
  readonly #events: EventRecorder;
  readonly #k: ReconcileKind<T, S, R, C>;

  constructor(client: KubeClient, events: EventRecorder, kind: ReconcileKind<T, S, R, C>) {
    this.#client = client;
    this.#events = events;
    this.#k = kind;
  }

  #path(obj: { metadata: V1ObjectMeta }, sub?: string): string {
    return resourcePath(this.#k.resource, obj.metadata.namespace, obj.metadata.name, sub);
  }

  async run(req: ReconcileRequest<T>, signal: AbortSignal): Promise<ReconcileResult> {
    let obj = await this.#get(req);
    if (!obj) {
      this.#k.gone?.(req);
      return {};
    }
    const early = await this.#k.precheck?.(obj);
    if (early) return early;
    const { finalizer } = this.#k;
    const finalizers = obj.metadata.finalizers ?? [];
    if (obj.metadata.deletionTimestamp) {
      if (finalizers.includes(finalizer)) {
        const later = await this.#k.finalize?.(obj);
        if (later) return later;
        await this.#setFinalizers(
          obj,
          finalizers.filter((f) => f !== finalizer),
        );
      }
      return {};
    }
    if (!finalizers.includes(finalizer) && this.#k.addFinalizer !== false) obj = await this.#setFinalizers(obj, [...finalizers, finalizer]);

    const before = structuredClone(obj.status ?? {}) as S;
    const status = structuredClone(before);
    const generation = obj.metadata.generation ?? 0;
    const requested = obj.metadata.annotations?.[RECONCILE_REQUESTED_AT_ANNOTATION];
    let sent = before;
    const patch = async () => {
      if (this.#sameStatus(sent, status)) return;
      await this.#patchStatus(obj, status);
      sent = structuredClone(status);
    };
    const target = { ...obj, apiVersion: API_VERSION, kind: this.#k.kind };
    const base: ReconcileScopeBase<T, S, R> = {
      obj,
      status,
      before,
      generation,
      requested,
      signal,
      ready: (ok, reason, message) => {
        status.conditions = markReady(status.conditions, generation, ok, reason, message);
      },
      reconciling: (reason, message) => {
        status.conditions = markReconciling(status.conditions, generation, reason, message);
      },
      stalled: (reason, message) => {
        status.conditions = markStalled(status.conditions, generation, reason, message);
      },
      progress: patch,
      event: (type, reason, note) => this.#events.record(target, type, reason, note, this.#k.eventAction),
    };

    let result: ReconcileResult = {};
    let failure: unknown;
    try {
      // Made here, so a context that cannot be made fails like a step. ContextMaker requires
      // newContext whenever C excludes undefined, so without one C admits undefined.
      const scope: ReconcileScope<T, S, R, C> = { ...base, ctx: this.#k.newContext ? this.#k.newContext(base) : (undefined as C) };
      for (const step of this.#k.steps) {
        const r = await step(scope);
        if (r) {
          result = r;
          break;
        }
      }
    } catch (err) {
      const verdict = judgeReconcileError(err);
      // A stalled object's error goes to the queue as a StallingError: no retry until the spec changes.
      failure = verdict.kind === 'stalled' ? verdict.error : err;
      applyVerdict(status, verdict, { generation, requested, unknownReason: this.#k.unknownErrorReason });
      if (verdict.kind === 'stalled') {
        this.#k.onStalled?.(status, verdict.reason, verdict.message);
        await this.#k.afterStalled?.(obj, status, verdict.reason, verdict.message);
      }
    } finally {
      // Shutting down and failing: the failure is most likely the cancellation itself, not the object's state.
      if (!signal.aborted || failure === undefined) await patch();
      if (this.#k.transitionEvents !== false) await this.#eventOnTransition(target, before, status);
    }
    if (failure !== undefined) throw failure;
    return result;
  }

  async #get(req: ReconcileRequest<T>): Promise<T | undefined> {
    // The informer's copy spares a GET per reconcile (a restarted controller over 1000 up-to-date
    // mirrors spent most of its 12-23 s on them); writes stay guarded by resourceVersion or merge patches.
    if (req.cached && this.#k.readFromCache !== false) return structuredClone(req.cached) as T;
    try {
      return await this.#client.get<T>(resourcePath(this.#k.resource, req.namespace, req.name));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Finalizers by merge patch guarded by resourceVersion (a conflict is retried by the queue). */
  #setFinalizers(obj: T, finalizers: string[]): Promise<T> {
    return this.#client.patch<T>(this.#path(obj), { metadata: { finalizers, resourceVersion: obj.metadata.resourceVersion } });
  }

  #body(status: S): Record<string, unknown> {
    const body: Record<string, unknown> = {};
    for (const k of this.#k.statusKeys) body[k] = status[k] ?? null;
    // As JSON would carry it: undefined members gone, so equal statuses compare equal.
    return JSON.parse(JSON.stringify(body)) as Record<string, unknown>;
  }

  /** Key order does not matter (the API server returns keys sorted; the steps write them in their own order). */
  #sameStatus(a: S, b: S): boolean {
    return isDeepStrictEqual(this.#body(a), this.#body(b));
  }

  async #patchStatus(obj: T, status: S): Promise<void> {
    const guard = this.#k.guardStatus ? { metadata: { resourceVersion: obj.metadata.resourceVersion } } : {};
    try {
      const updated = await this.#client.patch<T>(this.#path(obj, 'status'), { ...guard, status: this.#body(status) });
      // The next guarded write of this reconcile (after progress()) is from this version.
      obj.metadata.resourceVersion = updated.metadata.resourceVersion;
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
  }

  async #eventOnTransition(target: Parameters<EventRecorder['record']>[0], before: S, after: S): Promise<void> {
    const a = getCondition(before.conditions, 'Ready');
    const b = getCondition(after.conditions, 'Ready');
    if (!b || b.status === 'Unknown' || (a && a.status === b.status && a.reason === b.reason && a.message === b.message)) return;
    await this.#events.record(target, b.status === 'True' ? 'Normal' : 'Warning', b.reason, b.message, this.#k.eventAction);
  }
}
