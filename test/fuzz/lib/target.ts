import type fc from 'fast-check';

/**
 * One fuzz target: a parser, the promise it makes about hostile input (its contract, one line),
 * and what helps a fuzzer reach its corners (a dictionary of tokens, a structure-aware generator).
 *
 * `run` returns normally when the parser kept its contract on that input (parsed it, or refused it
 * with the error the contract names); anything it throws is a finding.
 */
export interface FuzzTarget {
  name: string;
  /** The contract, one line: what any input may produce. */
  contract: string;
  /** Source paths (relative to the repository, prefixes) whose coverage counts for this target. */
  sources: readonly string[];
  /** Tokens the mutator inserts and overwrites with (keywords, delimiters, magic numbers). */
  dictionary: readonly string[];
  /** A structure-aware generator (fast-check) for inputs random bytes would rarely reach. */
  generate?: fc.Arbitrary<Uint8Array>;
  /** Largest input the mutator makes (bytes); default 64 KiB. */
  maxLength?: number;
  /** Time bound per case: `baseMs + perKiBMs * KiB`; defaults 250 ms and 20 ms/KiB (a shared 2-core machine). */
  budget?: { baseMs?: number; perKiBMs?: number };
  setup?(): Promise<void>;
  teardown?(): Promise<void>;
  run(input: Uint8Array): void | Promise<void>;
}

/** The parser broke its contract in a way that is not an exception of its own (a wrong result, a leak). */
export class ContractViolation extends Error {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super(message, opts);
    this.name = 'ContractViolation';
  }
}

type ErrorClass = abstract new (...args: any[]) => Error;

/**
 * Runs `fn`; an error of one of the `allowed` classes is the parser's refusal (checked by `check`,
 * which may throw a ContractViolation), any other error escapes as a finding. Returns the result,
 * or undefined when the input was refused.
 */
export async function refusesWith<T>(allowed: readonly ErrorClass[], fn: () => T | Promise<T>, check?: (err: Error) => void): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    if (allowed.some((c) => err instanceof c)) {
      check?.(err as Error);
      return undefined;
    }
    throw err;
  }
}

/** The synchronous refusesWith, for targets that must not yield between cases. */
export function refusesWithSync<T>(allowed: readonly ErrorClass[], fn: () => T, check?: (err: Error) => void): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (allowed.some((c) => err instanceof c)) {
      check?.(err as Error);
      return undefined;
    }
    throw err;
  }
}

/** Throws a ContractViolation unless `cond` holds. */
export function assertContract(cond: unknown, message: string): asserts cond {
  if (!cond) throw new ContractViolation(message);
}

export function text(input: Uint8Array): string {
  return Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8');
}

export function bytes(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'utf8'));
}
