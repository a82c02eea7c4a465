/**
 * The one mapping from an error a reconcile ended with to what status says and what the work queue
 * does next, shared by every reconciler (ImageMirror, ImageBuild, and ContainerRun when it moves
 * onto it):
 *
 * - a StallingError is terminal: Stalled=True with its reason, no retry until the spec changes;
 * - an engine error (StevedoreError, itself or the cause of a ReconcileError) whose `retryable` is
 *   false is terminal too: the same input can never succeed (a malformed reference, an invalid
 *   range, a digest mismatch), so it stalls with the error's stable `code` as reason;
 * - a ReconcileError or WaitingError is the object's state (Ready=False with its reason), retried;
 * - anything else (an API hiccup, a reset connection) is retried with backoff, and the caller
 *   decides what, if anything, status says.
 */
import { StevedoreError } from '../../util/errors.js';
import type { Condition } from '../api/common.js';
import { markReady, markStalled } from '../conditions.js';
import { ReconcileError, StallingError, WaitingError } from './errors.js';

export type ErrorVerdict =
  /** Stalled=True; rethrow `error` so the controller forgets the key until the spec changes. */
  | { kind: 'stalled'; reason: string; message: string; error: StallingError }
  /** Ready=False with this reason; retried (with backoff, or after WaitingError's delay). */
  | { kind: 'not-ready'; reason: string; message: string }
  /** Not the object's fault: retried with backoff. */
  | { kind: 'unknown'; message: string };

/** The engine errors behind `err`: itself and every StevedoreError along its `cause` chain, outermost first. */
function engineErrors(err: unknown): StevedoreError[] {
  const out: StevedoreError[] = [];
  let e: unknown = err;
  for (let depth = 0; depth < 8 && e instanceof Error; depth++) {
    if (e instanceof StevedoreError) out.push(e);
    e = e.cause;
  }
  return out;
}

/** A condition reason from an engine code: `INVALID_INPUT` stays as is (the CRDs' reason pattern accepts it). */
function reasonOf(code: string): string {
  const r = code.replace(/[^A-Za-z0-9_]/g, '_').replace(/^[^A-Za-z]+/, '');
  return r || 'EngineError';
}

/** The status fields a verdict writes. */
export interface VerdictStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  lastHandledReconcileAt?: string;
}

/**
 * Writes a verdict into status: Stalled (the reconcile request, if any, counts as handled: a new one
 * tries again), or Ready=False with the verdict's reason, or, for an error that is not the object's,
 * Ready=False with `unknownReason` when the kind gives one, else nothing.
 */
export function applyVerdict(
  status: VerdictStatus,
  verdict: ErrorVerdict,
  o: { generation: number; requested?: string | undefined; unknownReason?: string | undefined },
): void {
  const { generation } = o;
  if (verdict.kind === 'stalled') {
    status.conditions = markStalled(status.conditions, generation, verdict.reason, verdict.message);
    if (o.requested !== undefined) status.lastHandledReconcileAt = o.requested;
  } else {
    const reason = verdict.kind === 'not-ready' ? verdict.reason : o.unknownReason;
    if (reason === undefined) return;
    status.conditions = markReady(status.conditions, generation, false, reason, verdict.message);
  }
  status.observedGeneration = generation;
}

export function judgeReconcileError(err: unknown): ErrorVerdict {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof StallingError) return { kind: 'stalled', reason: err.reason, message, error: err };
  // A ReconcileError without an engine cause (a missing Secret, an unusable credentials file) is
  // the object's state and may resolve by itself: retried. One wrapping a non-retryable engine
  // error is as final as the engine error.
  // A wrapper (SYNC_FAILED around a reset connection) is only as final as what it wraps: any
  // retryable error along the chain keeps the object retrying.
  const chain = err instanceof WaitingError ? [] : engineErrors(err);
  const engine = chain[0];
  if (engine && chain.every((e) => !e.retryable)) {
    const reason = reasonOf(engine.code);
    return { kind: 'stalled', reason, message, error: new StallingError(reason, message, { cause: err }) };
  }
  if (err instanceof ReconcileError || err instanceof WaitingError) return { kind: 'not-ready', reason: err.reason, message };
  return { kind: 'unknown', message };
}
