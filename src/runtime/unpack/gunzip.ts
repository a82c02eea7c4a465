import { Transform, type TransformCallback } from 'node:stream';
import * as zlib from 'node:zlib';
import { InvalidInputError } from '../../util/errors.js';
import { decodeBlocks, DeflateError, History, type BlocksResult } from './inflate-blocks.js';

/** The deflate window: a compressed block may refer back this far into the member's output. */
const WINDOW = 32 * 1024;
/** gzip header flag bits (RFC 1952 2.3.1). */
const FHCRC = 0x02;
const FEXTRA = 0x04;
const FNAME = 0x08;
const FCOMMENT = 0x10;
const FRESERVED = 0xe0;

type State = 'header' | 'block' | 'storedlen' | 'stored' | 'probe' | 'inflate' | 'trailer' | 'between';

/** Compressed blocks are decoded here (to find where they end) while they stay this small. */
const PROBE_MAX_OUT = 256 * 1024;
const PROBE_MAX_IN = 256 * 1024;

function corrupt(why: string): InvalidInputError {
  return new InvalidInputError(`invalid gzip layer: ${why}`);
}

/**
 * gunzip (RFC 1952, any number of members) that passes *stored* deflate blocks through without
 * copying them, and hands everything else to zlib. Incompressible content (random data, media,
 * archives) is written by gzip as stored blocks: zlib would copy each byte into its output buffer
 * and its window and compute a CRC-32 over it; here such a block's bytes go downstream as slices
 * of the input. At the first compressed block of a member, a raw zlib inflater takes over for the
 * rest of that member, primed with the last 32 KiB of output as its dictionary (a stored block
 * ends on a byte boundary, so the compressed block starts on one); its `bytesWritten` says where
 * the deflate data ended, and the trailer and any further members are read here again.
 *
 * `checkCrc: false` skips the CRC-32 of the output: only for callers that check the sha256 of the
 * whole output (the layer's diffID) against a trusted digest, which covers the same bytes. The
 * trailer's length (ISIZE) is always checked, and malformed framing is refused.
 */
export class FastGunzip extends Transform {
  readonly #checkCrc: boolean;
  #state: State = 'header';
  /** Input not yet consumed (only ever a few bytes of a header or trailer split across chunks). */
  #pending: Buffer = Buffer.alloc(0);
  #storedLeft = 0;
  #final = false;
  #members = 0;
  #memberOut = 0;
  #crc = 0;
  /** The member's most recent output, at least WINDOW bytes when there is that much. */
  #window: Buffer[] = [];
  #windowBytes = 0;
  #inflater: zlib.InflateRaw | undefined;
  #probeWindow: Buffer = Buffer.alloc(0);
  #probeIn: Buffer[] = [];
  #probeInBytes = 0;
  #probeBit = 0;
  #probeHist: History | undefined;
  #inflaterEnded: Promise<void> | undefined;
  #inflaterFailed: Promise<never> | undefined;
  #fed = 0;

  constructor(opts: { checkCrc?: boolean } = {}) {
    super({ readableHighWaterMark: 1024 * 1024 });
    this.#checkCrc = opts.checkCrc ?? true;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const input = this.#pending.length > 0 ? Buffer.concat([this.#pending, chunk]) : chunk;
    this.#pending = Buffer.alloc(0);
    this.#consume(input).then(() => cb(), (err: unknown) => cb(err as Error));
  }

  override _flush(cb: TransformCallback): void {
    const finish = async (): Promise<void> => {
      if (this.#state === 'inflate') {
        // The input ended inside a compressed block run: let zlib say whether that was the end.
        const inflater = this.#inflater!;
        inflater.end();
        await this.#inflaterEnded;
        const left = this.#fed - inflater.bytesWritten;
        if (left > 0) throw corrupt('data after the end of a deflate stream was lost');
        this.#inflater = undefined;
        this.#state = 'trailer';
      }
      if (this.#state !== 'between' || this.#pending.length > 0) {
        throw corrupt(this.#members === 0 && this.#state === 'header' && this.#pending.length === 0 ? 'empty stream' : 'unexpected end of data');
      }
    };
    finish().then(() => cb(), (err: unknown) => cb(err as Error));
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.#inflater?.destroy();
    cb(err);
  }

  #emit(buf: Buffer): void {
    if (buf.length === 0) return;
    if (this.#checkCrc) this.#crc = zlib.crc32(buf, this.#crc);
    this.#memberOut += buf.length;
    if (this.#state !== 'inflate') {
      this.#window.push(buf);
      this.#windowBytes += buf.length;
      while (this.#window.length > 1 && this.#windowBytes - this.#window[0]!.length >= WINDOW) {
        this.#windowBytes -= this.#window.shift()!.length;
      }
    }
    this.push(buf);
  }

  async #consume(input: Buffer): Promise<void> {
    let at = 0;
    while (at < input.length) {
      switch (this.#state) {
        case 'between':
        case 'header': {
          const used = this.#header(input, at);
          if (used < 0) {
            this.#pending = Buffer.from(input.subarray(at));
            return;
          }
          at += used;
          this.#state = 'block';
          this.#memberOut = 0;
          this.#crc = 0;
          this.#window = [];
          this.#windowBytes = 0;
          break;
        }
        case 'block': {
          const b = input[at]!;
          const type = (b >> 1) & 3;
          if (type === 3) throw corrupt('reserved deflate block type');
          if (type !== 0) {
            this.#startProbe();
            break;
          }
          this.#final = (b & 1) === 1;
          at += 1;
          this.#state = 'storedlen';
          break;
        }
        case 'storedlen': {
          if (input.length - at < 4) {
            this.#pending = Buffer.from(input.subarray(at));
            return;
          }
          const len = input.readUInt16LE(at);
          const nlen = input.readUInt16LE(at + 2);
          if ((len ^ 0xffff) !== nlen) throw corrupt('stored block length check failed');
          this.#storedLeft = len;
          at += 4;
          this.#state = 'stored';
          if (len === 0) this.#endBlock();
          break;
        }
        case 'probe': {
          const rest = this.#probe(input.subarray(at));
          if (rest === undefined) return;
          input = rest;
          at = 0;
          break;
        }
        case 'stored': {
          const n = Math.min(this.#storedLeft, input.length - at);
          this.#emit(input.subarray(at, at + n));
          at += n;
          this.#storedLeft -= n;
          if (this.#storedLeft === 0) this.#endBlock();
          break;
        }
        case 'inflate': {
          const rest = input.subarray(at);
          const left = await this.#feed(rest);
          if (left === 0) return;
          at = input.length - left;
          break;
        }
        case 'trailer': {
          if (input.length - at < 8) {
            this.#pending = Buffer.from(input.subarray(at));
            return;
          }
          const crc = input.readUInt32LE(at);
          const isize = input.readUInt32LE(at + 4);
          if (this.#checkCrc && crc !== this.#crc >>> 0) throw corrupt('CRC-32 mismatch');
          if (isize !== this.#memberOut % 2 ** 32) throw corrupt(`length mismatch (trailer says ${isize}, got ${this.#memberOut})`);
          at += 8;
          this.#members++;
          this.#state = 'between';
          break;
        }
      }
    }
  }

  #endBlock(): void {
    this.#state = this.#final ? 'trailer' : 'block';
  }

  /** Parses a member header at `at`; returns its length, or -1 when it is not all there yet. */
  #header(buf: Buffer, at: number): number {
    const avail = buf.length - at;
    if (avail < 10) {
      // Reject a wrong magic at once rather than waiting for ten bytes.
      if ((avail >= 1 && buf[at] !== 0x1f) || (avail >= 2 && buf[at + 1] !== 0x8b)) throw corrupt(this.#members > 0 ? 'trailing data after the last member' : 'not a gzip stream');
      return -1;
    }
    if (buf[at] !== 0x1f || buf[at + 1] !== 0x8b) throw corrupt(this.#members > 0 ? 'trailing data after the last member' : 'not a gzip stream');
    if (buf[at + 2] !== 8) throw corrupt(`unknown compression method ${buf[at + 2]}`);
    const flags = buf[at + 3]!;
    if (flags & FRESERVED) throw corrupt('reserved header flags set');
    let p = at + 10;
    if (flags & FEXTRA) {
      if (buf.length - p < 2) return -1;
      p += 2 + buf.readUInt16LE(p);
      if (p > buf.length) return -1;
    }
    for (const flag of [FNAME, FCOMMENT]) {
      if (!(flags & flag)) continue;
      const end = buf.indexOf(0, p);
      if (end < 0) {
        // A name longer than any sane header is not waited for forever.
        if (buf.length - at > 64 * 1024) throw corrupt('header field too long');
        return -1;
      }
      p = end + 1;
    }
    if (flags & FHCRC) {
      if (buf.length - p < 2) return -1;
      p += 2;
    }
    return p - at;
  }

  /** The last (up to) 32 KiB of the member's output. */
  #windowTail(): Buffer {
    return this.#windowBytes > 0 ? Buffer.concat(this.#window).subarray(-WINDOW) : Buffer.alloc(0);
  }

  /**
   * At a compressed block (byte-aligned: the member's start or right after a stored block), decode
   * in JS what follows, holding the output back, until a stored block or the member's end: then
   * emit it and go on here. If that would take more than the budget (a stream of compressed data),
   * give zlib the whole stretch from the aligned start instead, primed with the window.
   */
  #startProbe(): void {
    const window = this.#windowTail();
    this.#probeWindow = window;
    this.#probeIn = [];
    this.#probeInBytes = 0;
    this.#probeBit = 0;
    this.#probeHist = new History(window, 64 * 1024);
    this.#state = 'probe';
  }

  /** Feeds the probe; returns the input left for the byte-level states, or undefined to wait. */
  #probe(chunk: Buffer): Buffer | undefined {
    this.#probeIn.push(chunk);
    this.#probeInBytes += chunk.length;
    const input = this.#probeIn.length === 1 ? this.#probeIn[0]! : Buffer.concat(this.#probeIn);
    this.#probeIn = [input];
    let r: BlocksResult;
    try {
      r = decodeBlocks(input, this.#probeBit, this.#probeHist!, PROBE_MAX_OUT);
    } catch (err) {
      throw corrupt(err instanceof DeflateError ? err.message : String(err));
    }
    if (r.stop === 'more' && this.#probeInBytes <= PROBE_MAX_IN) {
      this.#probeBit = r.bit;
      return undefined;
    }
    if (r.stop === 'more' || r.stop === 'budget') {
      // Too much for here: zlib decodes the stretch again from its aligned start.
      const window = this.#probeWindow;
      this.#probeHist = undefined;
      this.#probeIn = [];
      this.#startInflate(window);
      return input;
    }
    const hist = this.#probeHist!;
    this.#probeHist = undefined;
    this.#probeIn = [];
    this.#state = 'block';
    this.#emit(Buffer.from(hist.buf.subarray(hist.start, hist.length)));
    if (r.stop === 'stored') {
      this.#final = r.final;
      this.#state = 'storedlen';
    } else {
      this.#state = 'trailer';
    }
    return input.subarray(r.offset);
  }

  #startInflate(window: Buffer = this.#windowTail()): void {
    const dictionary = window.length > 0 ? window : undefined;
    this.#window = [];
    this.#windowBytes = 0;
    const inflater = zlib.createInflateRaw({ chunkSize: 1024 * 1024, ...(dictionary ? { dictionary } : {}) });
    this.#inflater = inflater;
    this.#fed = 0;
    this.#state = 'inflate';
    inflater.on('data', (out: Buffer) => this.#emit(out));
    // zlib reports corrupt data as an 'error' (and never calls back the write it was given): every
    // wait on the inflater races against this.
    const failed = new Promise<never>((_, reject) => inflater.on('error', (err) => reject(corrupt(err.message))));
    failed.catch(() => undefined);
    this.#inflaterFailed = failed;
    this.#inflaterEnded = Promise.race([new Promise<void>((resolve) => inflater.once('end', resolve)), failed]);
    this.#inflaterEnded.catch(() => undefined);
  }

  /**
   * Gives zlib the next input and waits until it has processed it. Returns how many bytes at the
   * end of `rest` were not part of the deflate data (0 while it goes on), after which the trailer
   * follows.
   */
  async #feed(rest: Buffer): Promise<number> {
    const inflater = this.#inflater!;
    this.#fed += rest.length;
    await Promise.race([
      new Promise<void>((resolve, reject) => {
        inflater.write(rest, (err) => (err ? reject(corrupt(err.message)) : resolve()));
      }),
      this.#inflaterFailed!,
    ]);
    const left = this.#fed - inflater.bytesWritten;
    if (left === 0) return 0;
    // zlib stopped before the end of the input: the deflate data is over.
    await this.#inflaterEnded;
    this.#inflater = undefined;
    this.#state = 'trailer';
    return left;
  }
}
