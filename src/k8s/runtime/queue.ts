/**
 * A work queue of `namespace/name` keys, as client-go's: a key is queued at most once, is never
 * handed to two workers at a time (a key added while in flight is queued again when done), retries
 * back off per key exponentially, and an overall token bucket caps how fast retries come back.
 *
 * As in client-go's default controller rate limiter, the bucket limits retries (addRateLimited)
 * only: new objects, spec changes and scheduled requeues go straight to the workers, whose number
 * bounds the load. Limiting every key instead made 1000 new objects wait at least 90 s (10/s after
 * a burst of 100) with the workers mostly idle.
 */
import { exponentialDelay, withJitter, type BackoffOptions } from './backoff.js';

export interface WorkQueueOptions {
  /** Per-key retry backoff (default 500 ms doubling to 5 min, ±10 %). */
  backoff?: BackoffOptions;
  /** Overall rate limit of retries: keys per second and burst (default 10/s, burst 100). */
  qps?: number;
  burst?: number;
  /** Jitter applied to addAfter delays (default ±10 %). */
  requeueJitter?: number;
  /** Called whenever the number of waiting keys changes. */
  onDepth?: (depth: number) => void;
}

export class WorkQueue {
  readonly #queue: string[] = [];
  readonly #queued = new Set<string>();
  readonly #processing = new Set<string>();
  readonly #dirty = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  readonly #waiters: ((key: string | undefined) => void)[] = [];
  readonly #o: Required<Omit<WorkQueueOptions, 'onDepth'>> & Pick<WorkQueueOptions, 'onDepth'>;
  #tokens: number;
  #lastRefill = Date.now();
  #shutDown = false;

  constructor(o: WorkQueueOptions = {}) {
    this.#o = {
      backoff: o.backoff ?? { baseMs: 500, maxMs: 5 * 60_000, jitter: 0.1 },
      qps: o.qps ?? 10,
      burst: o.burst ?? 100,
      requeueJitter: o.requeueJitter ?? 0.1,
      onDepth: o.onDepth,
    };
    this.#tokens = this.#o.burst;
  }

  get depth(): number {
    return this.#queue.length;
  }

  /**
   * Queues the key now. A retry scheduled with addAfter stays scheduled (as in client-go's delaying
   * queue): an event that comes in between must not cancel a back-off or a poll, or an object whose
   * own status writes come back as events would be reconciled in a hot loop.
   */
  add(key: string): void {
    if (this.#shutDown) return;
    if (this.#processing.has(key)) {
      this.#dirty.add(key);
      return;
    }
    if (this.#queued.has(key)) return;
    this.#queued.add(key);
    const waiter = this.#waiters.shift();
    if (waiter) {
      this.#queued.delete(key);
      this.#processing.add(key);
      waiter(key);
    } else {
      this.#queue.push(key);
      this.#o.onDepth?.(this.#queue.length);
    }
  }

  /** Adds the key after a delay (with jitter); an earlier pending add wins. */
  addAfter(key: string, ms: number): void {
    if (this.#shutDown) return;
    const delay = withJitter(ms, this.#o.requeueJitter);
    if (delay <= 0) return this.add(key);
    const at = Date.now() + delay;
    const pending = this.#timers.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, delay);
    timer.unref();
    this.#timers.set(key, { at, timer });
  }

  /**
   * Adds the key after the longer of its per-key backoff and the overall bucket's wait (a token is
   * reserved now, as client-go's BucketRateLimiter does); returns the delay.
   */
  addRateLimited(key: string): number {
    const n = this.#failures.get(key) ?? 0;
    this.#failures.set(key, n + 1);
    const delay = Math.max(exponentialDelay(n, this.#o.backoff), this.#reserveToken());
    this.addAfter(key, delay);
    return delay;
  }

  /** Resets the key's backoff (after a success, or when retrying is pointless). */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  failures(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /** Waits for the next key; undefined once shut down. */
  async get(): Promise<string | undefined> {
    if (this.#shutDown) return undefined;
    const key = this.#queue.shift();
    if (key !== undefined) {
      this.#queued.delete(key);
      this.#processing.add(key);
      this.#o.onDepth?.(this.#queue.length);
      return key;
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Marks the key finished; if it was added meanwhile it is queued again. */
  done(key: string): void {
    this.#processing.delete(key);
    if (this.#dirty.delete(key)) this.add(key);
  }

  shutDown(): void {
    this.#shutDown = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    for (const w of this.#waiters.splice(0)) w(undefined);
  }

  /** Takes a token, going into debt if none is left; returns how long until that token exists (ms). */
  #reserveToken(): number {
    const now = Date.now();
    this.#tokens = Math.min(this.#o.burst, this.#tokens + ((now - this.#lastRefill) / 1000) * this.#o.qps);
    this.#lastRefill = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / this.#o.qps) * 1000);
  }
}
