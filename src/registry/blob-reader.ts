import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Descriptor } from '../oci/descriptor.js';
import { digestAlgorithm, type Digest } from '../oci/digest.js';
import { DigestMismatchError, SizeMismatchError, StevedoreError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffDelay, DEFAULT_RETRY } from '../util/retry.js';

/** One HTTP response carrying (the rest of) a blob: its status and its body. */
export interface BlobResponse {
  status: number;
  body: Readable;
}

export interface BlobReaderOptions {
  desc: Descriptor;
  /** Names the blob and its source in errors (`blob sha256:… from host/repo`). */
  what: string;
  /** The first response, already awaited by the caller (so "not found" and auth errors are its). */
  first: BlobResponse;
  /** Asks again from byte `from` (a Range request); a 200 answer is read past the bytes already had. */
  reopen: (from: number) => Promise<BlobResponse>;
  /** Consecutive broken connections without progress before giving up. */
  maxResumes: number;
  signal?: AbortSignal;
  log: Logger;
}

/**
 * A registry blob as one Readable, verified as it flows: every byte is hashed on the way through,
 * more bytes than the descriptor's size fail at once, and at the end the size and digest must match
 * or the stream errors instead of ending (so an upload it feeds is aborted, never committed).
 * A connection that breaks mid-blob is resumed with a Range request from the byte reached.
 *
 * It reads the response body by events straight into its own buffer: a blob used to pass through
 * an async iterator, a verifying Transform and a progress Transform, each with its own per-chunk
 * promises and buffering, which was a large part of a cold copy's CPU time besides the hashing.
 * `bytes` counts what has been received, for progress reporting without another stream stage.
 */
export class BlobReader extends Readable {
  readonly #o: BlobReaderOptions;
  readonly #hash: Hash;
  readonly #size: number | undefined;
  #received = 0;
  #body: Readable | undefined;
  /** Bytes at the start of the current response to drop (a server that ignored Range). */
  #skip = 0;
  #connectionStart = 0;
  #resumes = 0;
  #finished = false;

  constructor(o: BlobReaderOptions) {
    // 1 MiB of read-ahead: the upload side writes big batches, and fewer, larger pauses mean
    // fewer round trips through the event loop per blob.
    super({ highWaterMark: 1024 * 1024 });
    this.#o = o;
    this.#hash = createHash(digestAlgorithm(o.desc.digest));
    this.#size = o.desc.size >= 0 ? o.desc.size : undefined;
    this.#attach(o.first);
  }

  get bytes(): number {
    return this.#received;
  }

  override _read(): void {
    this.#body?.resume();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#finished = true;
    this.#body?.destroy();
    this.#body = undefined;
    cb(err);
  }

  #attach(res: BlobResponse): void {
    const body = res.body;
    this.#body = body;
    this.#skip = res.status === 200 ? this.#received : 0;
    this.#connectionStart = this.#received;
    body.on('data', (chunk: Buffer) => this.#onData(body, chunk));
    body.once('end', () => this.#onEnd(body));
    body.once('error', (err) => this.#onBroken(body, err));
  }

  #onData(body: Readable, chunk: Buffer): void {
    if (body !== this.#body || this.#finished) return;
    let b = chunk;
    if (this.#skip > 0) {
      const n = Math.min(this.#skip, b.length);
      this.#skip -= n;
      if (n === b.length) return;
      b = b.subarray(n);
    }
    this.#received += b.length;
    if (this.#size !== undefined && this.#received > this.#size) {
      this.#fail(new SizeMismatchError(this.#o.what, this.#size, this.#received));
      return;
    }
    this.#hash.update(b);
    if (!this.push(b)) body.pause();
  }

  #onEnd(body: Readable): void {
    if (body !== this.#body || this.#finished) return;
    if (this.#size !== undefined && this.#received < this.#size) {
      this.#onBroken(body, new StevedoreError('TRUNCATED', `blob ended after ${this.#received} of ${this.#size} bytes`, { retryable: true }));
      return;
    }
    this.#body = undefined;
    this.#finished = true;
    const actual: Digest = `${digestAlgorithm(this.#o.desc.digest)}:${this.#hash.digest('hex')}`;
    if (actual !== this.#o.desc.digest) {
      this.destroy(new DigestMismatchError(this.#o.what, this.#o.desc.digest, actual));
      return;
    }
    this.push(null);
  }

  #fail(err: Error): void {
    this.#finished = true;
    this.destroy(err);
  }

  #onBroken(body: Readable, err: Error): void {
    if (body !== this.#body || this.#finished) return;
    this.#body = undefined;
    body.destroy();
    this.#broken(err);
  }

  /** A connection broke (or could not be reopened): resume from the byte reached, or give up. */
  #broken(err: Error): void {
    const { signal, desc, what, maxResumes, log } = this.#o;
    if (this.#received > this.#connectionStart) this.#resumes = 0;
    if (signal?.aborted || this.#resumes >= maxResumes || (err instanceof StevedoreError && !err.retryable)) {
      // Name the blob and its source: this error also surfaces through the destination's upload
      // (it is that request's body), where a bare "other side closed" would blame the wrong
      // registry. Abort and our own StevedoreErrors pass through unchanged.
      this.#fail(
        signal?.aborted || err instanceof StevedoreError
          ? err
          : new StevedoreError('NETWORK', `${what}: download broke after ${this.#received} of ${desc.size} bytes: ${err.message}`, {
              cause: err,
              retryable: true,
            }),
      );
      return;
    }
    const delay = backoffDelay(DEFAULT_RETRY, this.#resumes);
    log.info({ received: this.#received, size: desc.size, err: err.message, delay }, 'blob download broke; resuming with Range');
    this.#resumes++;
    void (async () => {
      let res: BlobResponse;
      try {
        await sleep(delay, undefined, signal ? { signal } : undefined);
        if (this.#finished) return;
        res = await this.#o.reopen(this.#received);
      } catch (reopenErr) {
        // A failed reopen is another broken connection that made no progress.
        if (this.#finished) return;
        this.#connectionStart = this.#received;
        this.#broken(reopenErr as Error);
        return;
      }
      if (this.#finished) res.body.destroy();
      else this.#attach(res);
    })();
  }
}
