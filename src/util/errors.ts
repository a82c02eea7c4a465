/**
 * Every error Stevedore raises carries a stable `code` (for scripts and status reasons) and the
 * facts a user needs to act on it. Callers branch on `code` or on the class, never on message text.
 */
export class StevedoreError extends Error {
  readonly code: string;
  /** Whether trying the same operation again may succeed (network faults, 429, 5xx). */
  readonly retryable: boolean;

  constructor(code: string, message: string, opts: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = opts.retryable ?? false;
  }
}

/** Bad input from the user: a malformed reference, flag, file or config. Never retried. */
export class InvalidInputError extends StevedoreError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super('INVALID_INPUT', message, opts);
  }
}

/** Received bytes do not match the digest (or size) that names them. Never a warning. */
export class DigestMismatchError extends StevedoreError {
  readonly expected: string;
  readonly actual: string;
  constructor(what: string, expected: string, actual: string) {
    super('DIGEST_MISMATCH', `${what}: digest mismatch: expected ${expected}, got ${actual}`, { retryable: false });
    this.expected = expected;
    this.actual = actual;
  }
}

export class SizeMismatchError extends StevedoreError {
  constructor(what: string, expected: number, actual: number) {
    super('SIZE_MISMATCH', `${what}: size mismatch: expected ${expected} bytes, got ${actual}`);
  }
}

/** A document exceeded the size cap for its kind (manifest, config): refused before it is buffered. */
export class TooLargeError extends StevedoreError {
  constructor(what: string, limit: number, actual?: number) {
    super('TOO_LARGE', `${what} exceeds the ${limit}-byte limit${actual === undefined ? '' : ` (${actual} bytes)`}`);
  }
}

export class NotFoundError extends StevedoreError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super('NOT_FOUND', message, opts);
  }
}

export class UnsupportedError extends StevedoreError {
  constructor(message: string) {
    super('UNSUPPORTED', message);
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
