import { StevedoreError } from '../util/errors.js';

/**
 * A signature that does not hold: wrong key, tampered payload, a payload naming another image,
 * a malformed signature. `code` says which, for scripts and controller status reasons.
 */
export class SignatureError extends StevedoreError {
  constructor(code: 'SIGNATURE_INVALID' | 'SIGNATURE_MISSING' | 'SIGNATURE_MISMATCH', message: string, opts: { cause?: unknown } = {}) {
    super(code, message, opts);
  }
}

/** A key that cannot be used: unreadable file, unknown PEM type, wrong password, unsupported algorithm. */
export class KeyError extends StevedoreError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super('KEY_INVALID', message, opts);
  }
}
