import { describe, expect, it } from 'vitest';
import { rfc3339Micro, rfc3339Seconds } from '../../src/util/time.js';

describe('util/time', () => {
  const d = new Date(Date.UTC(2026, 11, 6, 9, 5, 7, 42));

  it('writes metav1.Time: whole seconds, Z', () => {
    expect(rfc3339Seconds(d)).toBe('2026-12-06T09:05:07Z');
    expect(rfc3339Seconds(new Date(Date.UTC(2026, 0, 1)))).toBe('2026-01-01T00:00:00Z');
  });

  it('writes metav1.MicroTime: six fraction digits, Z', () => {
    expect(rfc3339Micro(d)).toBe('2026-12-06T09:05:07.042000Z');
  });

  it('defaults to now, and both parse back to the same second', () => {
    const before = Math.floor(Date.now() / 1000) * 1000;
    const s = Date.parse(rfc3339Seconds());
    const m = Date.parse(rfc3339Micro());
    expect(s).toBeGreaterThanOrEqual(before);
    expect(m).toBeGreaterThanOrEqual(s);
    expect(m - s).toBeLessThan(1000 + 100);
  });
});
