/**
 * Errors a reconciler throws say what should happen next (as in Flux): a StallingError is terminal
 * (Stalled=True, no retry until the spec changes), a WaitingError requeues after a delay, and any
 * other error is retried with the key's exponential backoff.
 */
export class StallingError extends Error {
  readonly reason: string;
  constructor(reason: string, message: string, opts: { cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'StallingError';
    this.reason = reason;
  }
}

export class WaitingError extends Error {
  readonly reason: string;
  readonly requeueAfterMs: number;
  constructor(reason: string, message: string, requeueAfterMs: number) {
    super(message);
    this.name = 'WaitingError';
    this.reason = reason;
    this.requeueAfterMs = requeueAfterMs;
  }
}

/** A reconcile error that has already been recorded in status: retried with backoff, reason kept. */
export class ReconcileError extends Error {
  readonly reason: string;
  constructor(reason: string, message: string, opts: { cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ReconcileError';
    this.reason = reason;
  }
}
