/** Exponential backoff: base·2^n capped at max, with ±jitter so retries of many keys spread out. */
export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  /** Fraction of the delay added or removed at random (0.1 = ±10 %). */
  jitter?: number;
}

export function exponentialDelay(attempt: number, o: BackoffOptions): number {
  const raw = Math.min(o.maxMs, o.baseMs * 2 ** Math.max(0, attempt));
  return withJitter(raw, o.jitter ?? 0);
}

export function withJitter(ms: number, fraction: number): number {
  if (fraction <= 0) return ms;
  return Math.max(0, Math.round(ms * (1 + (Math.random() * 2 - 1) * fraction)));
}
