/**
 * zstd decompression across frames. A zstd stream may be many concatenated frames, and skippable
 * frames (zstd:chunked's TOC, tar-split and footer) must be skipped. Node's zstd decompressor
 * (24.x, checked here) stops at the end of the first frame and drops the rest without an error, which truncates a zstd:chunked layer, or any multi-frame zstd layer (pzstd,
 * zstd -T, podman's own zstd:chunked), to its first file.
 *
 * This finds frame boundaries from the frame and block headers (RFC 8878 §3.1: no decoding, just
 * the sizes they state) and gives each frame to a fresh Node decompressor; skippable frames are
 * dropped. Memory stays bounded: a frame is streamed through its decompressor, never buffered.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { createZstdDecompress, zstdDecompressSync, type ZstdDecompress } from 'node:zlib';
import { InvalidInputError } from '../util/errors.js';

const ZSTD_MAGIC = 0xfd2fb528;
const SKIPPABLE_MASK = 0xfffffff0;
/** The first skippable-frame magic (RFC 8878 §3.1.2: 0x184D2A5?), as zstd:chunked writes its TOC, tar-split and footer. */
export const SKIPPABLE_MAGIC = 0x184d2a50;

/** Frames up to this compressed size, when wholly buffered, are decompressed in one call. */
const SMALL_FRAME = 1 << 20;
/** ...as long as they decompress to at most this (else they are streamed: no zstd bomb in memory). */
const SMALL_OUTPUT = 8 << 20;

/**
 * The length of the zstd frame at the start of `buf` (magic included) if it lies wholly in `buf`
 * and within `limit` bytes, from its header and block headers; undefined otherwise.
 */
function bufferedFrameLength(buf: Buffer, limit: number): number | undefined {
  if (buf.length < 5) return undefined;
  const fhd = buf[4]!;
  const single = (fhd >> 5) & 1;
  const checksum = (fhd >> 2) & 1;
  const fcsFlag = fhd >> 6;
  let at = 5 + (single ? 0 : 1) + [0, 1, 2, 4][fhd & 3]! + (fcsFlag === 0 ? single : [0, 2, 4, 8][fcsFlag]!);
  for (;;) {
    if (at + 3 > buf.length || at > limit) return undefined;
    const v = buf.readUIntLE(at, 3);
    const type = (v >> 1) & 3;
    if (type === 3) return undefined; // the streaming path reports it
    at += 3 + (type === 1 ? 1 : v >>> 3);
    if (v & 1) {
      at += checksum ? 4 : 0;
      return at <= buf.length && at <= limit ? at : undefined;
    }
  }
}

type State =
  | { kind: 'magic' }
  /** Inside a zstd frame: `need` bytes of header, block header or block body to pass through. */
  | { kind: 'frame-header' }
  | { kind: 'block-header'; checksum: boolean }
  | { kind: 'block-body'; left: number; last: boolean; checksum: boolean }
  | { kind: 'checksum'; left: number }
  | { kind: 'skip'; left: number };

/** A Transform from zstd (one or more frames, skippable frames allowed) to the concatenated content. */
export class ZstdFramesDecompress extends Transform {
  #buf: Buffer = Buffer.alloc(0);
  #state: State = { kind: 'magic' };
  #frame: ZstdDecompress | undefined;
  #frames = 0;
  #offset = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    this.#pump().then(() => done(), done);
  }

  override _flush(done: TransformCallback): void {
    const fail = (what: string) => done(new InvalidInputError(`zstd stream ends inside ${what} (at byte ${this.#offset + this.#buf.length})`));
    if (this.#buf.length > 0 || this.#state.kind !== 'magic') return fail(this.#state.kind === 'magic' ? 'a frame magic' : `a frame (${this.#state.kind})`);
    if (this.#frames === 0) return done(new InvalidInputError('zstd stream has no frame'));
    done();
  }

  override _destroy(err: Error | null, done: (error: Error | null) => void): void {
    this.#frame?.destroy();
    done(err);
  }

  /** Passes `n` bytes of the buffer to the current frame's decompressor and waits for its output. */
  async #feed(n: number): Promise<void> {
    const part = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    this.#offset += n;
    const frame = this.#frame!;
    await new Promise<void>((resolve, reject) => frame.write(part, (err) => (err ? reject(err) : resolve())));
  }

  #take(n: number): Buffer | undefined {
    if (this.#buf.length < n) return undefined;
    return this.#buf.subarray(0, n);
  }

  async #endFrame(): Promise<void> {
    const frame = this.#frame!;
    this.#frame = undefined;
    await new Promise<void>((resolve, reject) => {
      frame.once('error', reject);
      frame.once('end', resolve);
      frame.end();
    });
  }

  async #pump(): Promise<void> {
    for (;;) {
      const s = this.#state;
      if (s.kind === 'magic') {
        const m = this.#take(4);
        if (!m) return;
        const magic = m.readUInt32LE(0);
        if (magic === ZSTD_MAGIC) {
          this.#frames++;
          // Fast path: a small frame already in the buffer, in one call (a decompressor stream per
          // frame costs far more than the frame for zstd:chunked's many small ones).
          const len = bufferedFrameLength(this.#buf, SMALL_FRAME);
          if (len !== undefined) {
            let out: Buffer | undefined;
            try {
              out = zstdDecompressSync(this.#buf.subarray(0, len), { maxOutputLength: SMALL_OUTPUT });
            } catch (err) {
              if ((err as { code?: string }).code !== 'ERR_BUFFER_TOO_LARGE') throw err;
            }
            if (out) {
              if (out.length > 0) this.push(out);
              this.#buf = this.#buf.subarray(len);
              this.#offset += len;
              continue;
            }
          }
          const d = createZstdDecompress();
          d.on('data', (out: Buffer) => this.push(out));
          d.on('error', (err) => this.destroy(err));
          this.#frame = d;
          this.#state = { kind: 'frame-header' };
        } else if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
          const h = this.#take(8);
          if (!h) return;
          this.#buf = this.#buf.subarray(8);
          this.#offset += 8;
          this.#state = { kind: 'skip', left: h.readUInt32LE(4) };
        } else {
          throw new InvalidInputError(`not zstd data: unknown frame magic 0x${magic.toString(16)} at byte ${this.#offset}`);
        }
      } else if (s.kind === 'skip') {
        const n = Math.min(s.left, this.#buf.length);
        this.#buf = this.#buf.subarray(n);
        this.#offset += n;
        s.left -= n;
        if (s.left > 0) return;
        this.#state = { kind: 'magic' };
      } else if (s.kind === 'frame-header') {
        // Magic, then the frame header descriptor, which states the header's length.
        const h = this.#take(5);
        if (!h) return;
        const fhd = h[4]!;
        const fcsFlag = fhd >> 6;
        const single = (fhd >> 5) & 1;
        const checksum = ((fhd >> 2) & 1) === 1;
        const didSize = [0, 1, 2, 4][fhd & 3]!;
        const fcsSize = fcsFlag === 0 ? single : [0, 2, 4, 8][fcsFlag]!;
        const len = 5 + (single ? 0 : 1) + didSize + fcsSize;
        if (this.#buf.length < len) return;
        await this.#feed(len);
        this.#state = { kind: 'block-header', checksum };
      } else if (s.kind === 'block-header') {
        const h = this.#take(3);
        if (!h) return;
        const v = h.readUIntLE(0, 3);
        const last = (v & 1) === 1;
        const type = (v >> 1) & 3;
        const size = v >>> 3;
        if (type === 3) throw new InvalidInputError(`not zstd data: reserved block type at byte ${this.#offset}`);
        await this.#feed(3);
        this.#state = { kind: 'block-body', left: type === 1 ? 1 : size, last, checksum: s.checksum };
      } else if (s.kind === 'block-body') {
        if (s.left > 0) {
          if (this.#buf.length === 0) return;
          const n = Math.min(s.left, this.#buf.length);
          s.left -= n;
          await this.#feed(n);
          if (s.left > 0) return;
        }
        if (!s.last) this.#state = { kind: 'block-header', checksum: s.checksum };
        else if (s.checksum) this.#state = { kind: 'checksum', left: 4 };
        else {
          await this.#endFrame();
          this.#state = { kind: 'magic' };
        }
      } else {
        if (this.#buf.length === 0) return;
        const n = Math.min(s.left, this.#buf.length);
        s.left -= n;
        await this.#feed(n);
        if (s.left > 0) return;
        await this.#endFrame();
        this.#state = { kind: 'magic' };
      }
    }
  }
}

export function createZstdFramesDecompress(): ZstdFramesDecompress {
  return new ZstdFramesDecompress();
}
