import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { DigestMismatchError, InvalidInputError, SizeMismatchError } from '../util/errors.js';

/** A content digest in the OCI form `algorithm:encoded`, e.g. `sha256:9f86…`. */
export type Digest = `${string}:${string}`;

export type DigestAlgorithm = 'sha256' | 'sha512';

const ENCODED: Record<DigestAlgorithm, RegExp> = {
  sha256: /^[a-f0-9]{64}$/,
  sha512: /^[a-f0-9]{128}$/,
};

/** Parses and validates a digest string; rejects unknown algorithms and malformed hex. */
export function parseDigest(value: string): { algorithm: DigestAlgorithm; encoded: string; digest: Digest } {
  const colon = value.indexOf(':');
  if (colon < 1) throw new InvalidInputError(`invalid digest "${value}": expected algorithm:hex`);
  const algorithm = value.slice(0, colon);
  const encoded = value.slice(colon + 1);
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw new InvalidInputError(`invalid digest "${value}": unsupported algorithm "${algorithm}"`);
  }
  if (!ENCODED[algorithm].test(encoded)) {
    throw new InvalidInputError(`invalid digest "${value}": malformed ${algorithm} hex`);
  }
  return { algorithm, encoded, digest: value as Digest };
}

/** Whether a string is a valid digest. Never throws: it is asked of every tag in a sync, and an error object each time showed in profiles. */
export function isDigest(value: string): value is Digest {
  const colon = value.indexOf(':');
  if (colon < 1) return false;
  const algorithm = value.slice(0, colon);
  return (algorithm === 'sha256' || algorithm === 'sha512') && ENCODED[algorithm].test(value.slice(colon + 1));
}

export function digestAlgorithm(digest: Digest): DigestAlgorithm {
  return parseDigest(digest).algorithm;
}

export function digestHex(digest: Digest): string {
  return parseDigest(digest).encoded;
}

export function digestBytes(data: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/**
 * A pass-through stream that hashes what flows and, at the end, checks the digest and size it was
 * told to expect. A mismatch destroys the stream with an error, so whatever is piped downstream
 * (a registry upload, a file being written) is aborted rather than committed.
 */
export class VerifyingStream extends Transform {
  readonly #hash: Hash;
  readonly #expected: Digest | undefined;
  readonly #expectedSize: number | undefined;
  readonly #what: string;
  #bytes = 0;
  #digest: Digest | undefined;

  constructor(opts: { expected?: Digest; size?: number; algorithm?: DigestAlgorithm; what?: string }) {
    super();
    const algorithm = opts.expected ? digestAlgorithm(opts.expected) : (opts.algorithm ?? 'sha256');
    this.#hash = createHash(algorithm);
    this.#expected = opts.expected;
    this.#expectedSize = opts.size !== undefined && opts.size >= 0 ? opts.size : undefined;
    this.#what = opts.what ?? opts.expected ?? 'blob';
    this.#algorithm = algorithm;
  }

  readonly #algorithm: DigestAlgorithm;

  get bytes(): number {
    return this.#bytes;
  }

  /** The digest of what flowed; only defined once the stream has ended. */
  get digest(): Digest | undefined {
    return this.#digest;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#bytes += chunk.length;
    if (this.#expectedSize !== undefined && this.#bytes > this.#expectedSize) {
      cb(new SizeMismatchError(this.#what, this.#expectedSize, this.#bytes));
      return;
    }
    this.#hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.#digest = `${this.#algorithm}:${this.#hash.digest('hex')}`;
    if (this.#expectedSize !== undefined && this.#bytes !== this.#expectedSize) {
      cb(new SizeMismatchError(this.#what, this.#expectedSize, this.#bytes));
      return;
    }
    if (this.#expected !== undefined && this.#digest !== this.#expected) {
      cb(new DigestMismatchError(this.#what, this.#expected, this.#digest));
      return;
    }
    cb();
  }
}

/** Checks a whole in-memory document (manifest, config) against its expected digest. */
export function verifyBytes(what: string, data: Uint8Array, expected: Digest, size?: number): void {
  if (size !== undefined && size >= 0 && data.length !== size) throw new SizeMismatchError(what, size, data.length);
  const actual = digestBytes(data, digestAlgorithm(expected));
  if (actual !== expected) throw new DigestMismatchError(what, expected, actual);
}
