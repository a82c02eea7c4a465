/**
 * The one retry: `withRetry(fn, policy, classify, signal)` runs an operation again while `classify`
 * says its failure is transient, waiting an exponential backoff with jitter (or what the server
 * asked for with Retry-After) between attempts. Registry requests, token fetches, the scheme probe,
 * blob transfers and Range resumes all use this policy, backoff and network-error list.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { StevedoreError } from './errors.js';

export interface RetryPolicy {
  /** Attempts in all, the first included (skopeo's --retry-times N is N + 1 attempts). */
  attempts: number;
  /** First backoff; doubles each attempt (half fixed, half jitter). */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A fixed delay between attempts instead of the backoff (skopeo's --retry-delay). */
  fixedDelayMs?: number;
  /** The longest Retry-After waited out; a server asking more fails the operation (RETRY_AFTER_TOO_LONG). */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 250, maxDelayMs: 30_000, maxRetryAfterMs: 120_000 };

/** What classify says of a failure: give up, try again after the policy's backoff, or after `afterMs` (Retry-After). */
export type RetryVerdict = boolean | { afterMs: number };

export interface RetryInfo {
  attempt: number;
  delayMs: number;
  err: unknown;
}

/** A server asked to wait longer than the policy allows (Retry-After over maxRetryAfterMs). */
export class RetryAfterTooLongError extends StevedoreError {
  constructor(what: string, askedMs: number, capMs: number, cause: unknown) {
    super(
      'RETRY_AFTER_TOO_LONG',
      `${what}: the server asked to retry after ${Math.ceil(askedMs / 1000)} s (Retry-After), more than the ${Math.round(capMs / 1000)} s this client waits; try again later`,
      { cause, retryable: true },
    );
  }
}

/** Parses Retry-After as delta-seconds or an HTTP date; undefined when absent or unparsable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The wait before attempt `attempt + 1` (attempt counts from 0): fixed, or exponential with jitter. */
export function backoffDelay(policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs' | 'fixedDelayMs'>, attempt: number): number {
  if (policy.fixedDelayMs !== undefined) return policy.fixedDelayMs;
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return Math.round(cap / 2 + (Math.random() * cap) / 2);
}

/** Network-level failures worth another try (the connection broke, not the request): the one list. */
const RETRYABLE_NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

export function isRetryableNetworkError(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return code !== undefined && RETRYABLE_NETWORK_CODES.has(code);
}

/** The usual classification: a StevedoreError by its `retryable` (and `retryAfterMs`), anything else by the network list. */
export function classifyError(err: unknown): RetryVerdict {
  if (err instanceof StevedoreError) {
    const after = (err as { retryAfterMs?: number }).retryAfterMs;
    return err.retryable ? (after !== undefined ? { afterMs: after } : true) : false;
  }
  return isRetryableNetworkError(err);
}

/**
 * Runs `fn(attempt)` (attempt counts from 0) until it succeeds, `classify` says its failure is not
 * transient, the attempts are spent, or `signal` aborts (then the abort's reason is thrown). A
 * Retry-After over the policy's cap fails at once with RetryAfterTooLongError naming `what`.
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  classify: (err: unknown, attempt: number) => RetryVerdict = classifyError,
  signal?: AbortSignal,
  opts: { what?: string; onRetry?: (info: RetryInfo) => void } = {},
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (signal?.aborted) throw err;
      const verdict = classify(err, attempt);
      if (verdict === false || attempt + 1 >= policy.attempts) throw err;
      let delayMs = backoffDelay(policy, attempt);
      if (typeof verdict === 'object') {
        if (verdict.afterMs > policy.maxRetryAfterMs)
          throw new RetryAfterTooLongError(opts.what ?? (err as Error).message, verdict.afterMs, policy.maxRetryAfterMs, err);
        delayMs = verdict.afterMs;
      }
      opts.onRetry?.({ attempt, delayMs, err });
      await sleep(delayMs, undefined, signal ? { signal } : undefined);
    }
  }
}
