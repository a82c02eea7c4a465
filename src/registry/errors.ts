import { StevedoreError } from '../util/errors.js';

/** One entry of the distribution spec's error body: `{"errors":[{"code","message","detail"}]}`. */
export interface RegistryErrorDetail {
  code: string;
  message: string;
  detail?: unknown;
}

/** A registry answered with an error status; carries the HTTP status and the registry's own codes. */
export class RegistryError extends StevedoreError {
  readonly status: number;
  readonly url: string;
  readonly details: RegistryErrorDetail[];
  /** The server's Retry-After, when it sent one with a retryable status. */
  retryAfterMs?: number;

  constructor(message: string, opts: { status: number; url: string; details?: RegistryErrorDetail[]; code?: string; retryable?: boolean; cause?: unknown }) {
    super(opts.code ?? codeForStatus(opts.status), message, { retryable: opts.retryable ?? isRetryableStatus(opts.status), cause: opts.cause });
    this.status = opts.status;
    this.url = opts.url;
    this.details = opts.details ?? [];
  }
}

export class AuthError extends StevedoreError {
  /** The token service's Retry-After, when it sent one with a retryable status. */
  readonly retryAfterMs?: number;
  constructor(message: string, opts: { cause?: unknown; retryable?: boolean; retryAfterMs?: number } = {}) {
    super('UNAUTHORIZED', message, { cause: opts.cause, retryable: opts.retryable });
    if (opts.retryAfterMs !== undefined) this.retryAfterMs = opts.retryAfterMs;
  }
}

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

function codeForStatus(status: number): string {
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 403) return 'DENIED';
  if (status === 404) return 'NOT_FOUND';
  if (status === 429) return 'TOO_MANY_REQUESTS';
  if (status >= 500) return 'REGISTRY_UNAVAILABLE';
  return 'REGISTRY_ERROR';
}

/** Parses the error body if it is the spec's JSON; otherwise nothing. */
export function parseErrorBody(text: string): RegistryErrorDetail[] {
  try {
    const doc = JSON.parse(text) as { errors?: RegistryErrorDetail[] };
    return Array.isArray(doc.errors) ? doc.errors.filter((e) => typeof e?.code === 'string') : [];
  } catch {
    return [];
  }
}
