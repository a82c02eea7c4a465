import { describe, expect, it } from 'vitest';
import { sleep } from '../../src/util/sleep.js';

describe('util/sleep', () => {
  it('waits the time asked', async () => {
    const t0 = performance.now();
    await sleep(60);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(55);
  });

  it('resolves (never rejects) as soon as its signal aborts, and at once when already aborted', async () => {
    const ac = new AbortController();
    const t0 = performance.now();
    setTimeout(() => ac.abort(), 20);
    await expect(sleep(10_000, ac.signal)).resolves.toBeUndefined();
    expect(performance.now() - t0).toBeLessThan(2_000);
    const t1 = performance.now();
    await sleep(10_000, ac.signal);
    // Far below the 10 s asked for (loose: the suite runs on a loaded machine).
    expect(performance.now() - t1).toBeLessThan(2_000);
  });
});
