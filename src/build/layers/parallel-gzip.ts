import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { promisify } from 'node:util';
import { gzip as gzipCb, type ZlibOptions } from 'node:zlib';

const gzip = promisify<Buffer, ZlibOptions, Buffer>(gzipCb);

/** Bytes of input per gzip member: large enough that the 32 KiB window loses almost nothing. */
export const GZIP_BLOCK = 4 * 1024 * 1024;

/**
 * gzip on several cores: the input is cut into fixed-size blocks, each compressed on libuv's thread
 * pool as its own gzip member, and the members are emitted in order. A sequence of members is one
 * valid gzip file (RFC 1952 §2.2; Go's, zlib's and GNU gzip's readers all read on across members),
 * and since the cut points depend only on the byte offsets, the same input always gives the same
 * output. At most `concurrency` blocks are in flight, so memory stays bounded and a slow writer
 * downstream holds the tar writer back.
 */
export class ParallelGzip extends Transform {
  readonly #level: number;
  readonly #concurrency: number;
  readonly #block: number;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #inFlight: Promise<Buffer>[] = [];
  #members = 0;

  constructor(opts: { level?: number; concurrency?: number; blockSize?: number } = {}) {
    super();
    this.#level = opts.level ?? 6;
    this.#concurrency = Math.max(1, opts.concurrency ?? Math.min(availableParallelism(), 8));
    this.#block = opts.blockSize ?? GZIP_BLOCK;
  }

  /** gzip members written so far. */
  get members(): number {
    return this.#members;
  }

  #start(block: Buffer): void {
    const p = gzip(block, { level: this.#level });
    p.catch(() => undefined); // awaited in order below
    this.#inFlight.push(p);
  }

  async #drainTo(limit: number): Promise<void> {
    while (this.#inFlight.length > limit) {
      const out = await (this.#inFlight.shift() as Promise<Buffer>);
      this.#members++;
      this.push(out);
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    (async () => {
      while (this.#pendingBytes >= this.#block) {
        // One buffer is cut in place; several are joined once (never re-copying a big remainder).
        const all = this.#pending.length === 1 ? this.#pending[0] : Buffer.concat(this.#pending, this.#pendingBytes);
        this.#start(all.subarray(0, this.#block));
        const rest = all.subarray(this.#block);
        this.#pending = rest.length > 0 ? [rest] : [];
        this.#pendingBytes = rest.length;
        await this.#drainTo(this.#concurrency - 1);
      }
    })().then(
      () => cb(),
      (err: Error) => cb(err),
    );
  }

  override _flush(cb: TransformCallback): void {
    // The last (possibly empty) block: an empty input still gives one valid gzip member.
    if (this.#pendingBytes > 0 || this.#members + this.#inFlight.length === 0) {
      this.#start(Buffer.concat(this.#pending, this.#pendingBytes));
      this.#pending = [];
      this.#pendingBytes = 0;
    }
    this.#drainTo(0).then(
      () => cb(),
      (err: Error) => cb(err),
    );
  }
}
