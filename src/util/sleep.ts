/**
 * Waits `ms` milliseconds, or less when `signal` aborts: then it resolves at once (it never
 * rejects), so a polling or retry loop checks `signal.aborted` after the wait and ends normally.
 * For a wait that should throw on abort, use node:timers/promises' `setTimeout(ms, value, { signal })`.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
