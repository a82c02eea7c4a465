/**
 * Runs `fn` over `items` with at most `limit` in flight; rejects on the first failure after
 * letting running calls settle (nothing is left writing behind the caller's back).
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed: { err: unknown } | undefined;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!, i);
      } catch (err) {
        failed ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed) throw failed.err;
  return results;
}

/**
 * A counting semaphore: at most `n` of the functions given to run() at once, started in call order.
 * For work that arrives over time from several places (mapLimit is for a list known up front).
 */
export class Limiter {
  #free: number;
  readonly #waiters: Array<() => void> = [];
  constructor(n: number) {
    this.#free = Math.max(1, n);
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiters.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.#waiters.shift();
      if (next) next();
      else this.#free++;
    }
  }
}
