/**
 * Runs one reconciler: an informer feeds keys into a work queue, workers take keys and call the
 * reconciler, and the outcome decides what comes next (typed errors in errors.ts).
 */
import type { Logger } from 'pino';
import type { KubeClient, ResourcePath } from './client.js';
import { StallingError, WaitingError } from './errors.js';
import { Informer, objectKey, type MetaObject } from './informer.js';
import type { ControllerMetrics } from './metrics.js';
import { WorkQueue, type WorkQueueOptions } from './queue.js';

export interface ReconcileRequest<T = unknown> {
  namespace: string;
  name: string;
  /**
   * The informer's copy of the object when the key was taken (undefined if it is not in the cache):
   * reading it instead of a GET spares the API server one request per reconcile (controller-runtime's
   * client reads from the cache too). It may lag the API server by a watch event, so writes must
   * still be guarded (resourceVersion, or patches that do not depend on it). Shared with the
   * cache: read-only (structuredClone before changing it).
   */
  cached?: Readonly<T>;
}

export interface ReconcileResult {
  /** Reconcile again after this long (jittered), e.g. for the next scheduled sync. */
  requeueAfterMs?: number;
}

/**
 * Objects of another kind whose changes reconcile an object of this one (as controller-runtime's
 * Owns/Watches): e.g. an ImageBuild's Pods. `keyOf` maps a changed object to the key to enqueue.
 */
export interface SecondaryWatch {
  resource: ResourcePath;
  labelSelector?: string;
  keyOf(obj: MetaObject): string | undefined;
}

export interface Reconciler<T extends MetaObject> {
  /** Controller name, for logs and metrics. */
  readonly name: string;
  readonly resource: ResourcePath;
  /** Which updates enqueue a key (default: all). Adds and deletes always do. */
  shouldEnqueueUpdate?(oldObj: T, newObj: T): boolean;
  reconcile(req: ReconcileRequest<T>, signal: AbortSignal): Promise<ReconcileResult>;
  /** Other kinds to watch; each change enqueues the key `keyOf` returns. */
  readonly watches?: readonly SecondaryWatch[];
}

export interface ControllerOptions {
  namespace?: string;
  workers?: number;
  queue?: WorkQueueOptions;
  metrics: ControllerMetrics;
  log: Logger;
}

export class Controller<T extends MetaObject> {
  readonly #client: KubeClient;
  readonly #r: Reconciler<T>;
  readonly #o: ControllerOptions;
  #informer?: Informer<T>;

  constructor(client: KubeClient, reconciler: Reconciler<T>, o: ControllerOptions) {
    this.#client = client;
    this.#r = reconciler;
    this.#o = o;
  }

  get hasSynced(): boolean {
    return this.#informer?.hasSynced ?? false;
  }

  /** Runs until the signal aborts; in-flight reconciles see the same signal and are awaited. */
  async run(signal: AbortSignal): Promise<void> {
    const { metrics, log } = this.#o;
    const name = this.#r.name;
    const queue = new WorkQueue({ ...this.#o.queue, onDepth: (d) => metrics.queueDepth.set({ name }, d) });
    const informer = new Informer<T>(this.#client, this.#r.resource, { namespace: this.#o.namespace, log });
    this.#informer = informer;
    informer.addHandlers({
      onAdd: (o) => queue.add(objectKey(o)),
      onUpdate: (a, b) => {
        if (this.#r.shouldEnqueueUpdate?.(a, b) ?? true) queue.add(objectKey(b));
      },
      onDelete: (o) => queue.add(objectKey(o)),
    });
    const secondary = (this.#r.watches ?? []).map((w) => {
      const inf = new Informer<MetaObject>(this.#client, w.resource, { namespace: this.#o.namespace, labelSelector: w.labelSelector, log });
      const enqueue = (o: MetaObject) => {
        const key = w.keyOf(o);
        if (key) queue.add(key);
      };
      inf.addHandlers({ onAdd: enqueue, onUpdate: (_a, b) => enqueue(b), onDelete: enqueue });
      return inf;
    });
    const informing = Promise.all([informer.run(signal), ...secondary.map((i) => i.run(signal))]);
    const onAbort = () => queue.shutDown();
    signal.addEventListener('abort', onAbort, { once: true });
    await Promise.race([
      Promise.all([informer.waitForSync(), ...secondary.map((i) => i.waitForSync())]),
      new Promise((r) => signal.addEventListener('abort', r, { once: true })),
    ]);
    log.info({ controller: name }, 'cache synced; starting workers');
    const worker = async () => {
      for (;;) {
        const key = await queue.get();
        if (key === undefined) return;
        try {
          await this.#process(queue, key, signal);
        } finally {
          queue.done(key);
        }
      }
    };
    await Promise.all(Array.from({ length: this.#o.workers ?? 2 }, worker));
    await informing;
    signal.removeEventListener('abort', onAbort);
  }

  async #process(queue: WorkQueue, key: string, signal: AbortSignal): Promise<void> {
    const { metrics, log } = this.#o;
    const controller = this.#r.name;
    const slash = key.indexOf('/');
    const req: ReconcileRequest<T> = slash < 0 ? { namespace: '', name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
    const cached = this.#informer?.get(key);
    if (cached) req.cached = cached;
    const end = metrics.reconcileDuration.startTimer({ controller });
    try {
      const res = await this.#r.reconcile(req, signal);
      queue.forget(key);
      if (res.requeueAfterMs !== undefined && res.requeueAfterMs >= 0) queue.addAfter(key, res.requeueAfterMs);
      metrics.reconcileTotal.inc({ controller, result: res.requeueAfterMs !== undefined ? 'requeue' : 'success' });
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof StallingError) {
        queue.forget(key);
        metrics.reconcileTotal.inc({ controller, result: 'stalled' });
        log.warn({ controller, key, reason: err.reason, err: err.message }, 'reconcile stalled; waiting for a spec change');
      } else if (err instanceof WaitingError) {
        queue.forget(key);
        queue.addAfter(key, err.requeueAfterMs);
        metrics.reconcileTotal.inc({ controller, result: 'requeue' });
        log.info({ controller, key, reason: err.reason, retryInMs: err.requeueAfterMs }, err.message);
      } else {
        const delay = queue.addRateLimited(key);
        metrics.reconcileTotal.inc({ controller, result: 'error' });
        metrics.reconcileErrors.inc({ controller });
        log.warn({ controller, key, err: (err as Error).message, retryInMs: delay }, 'reconcile failed');
      }
    } finally {
      end();
    }
  }
}
