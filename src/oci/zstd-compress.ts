/**
 * zstd compression whose output depends only on the input's bytes. Node's zstd stream hands each
 * written chunk to the compressor as it comes, and zstd's streamed output depends on how its input
 * was cut (measured: the same 2 MiB tar in 7,000-byte chunks and in 64 KiB chunks gave two
 * different blobs). A layer read from the network arrives cut however the sockets delivered it, so
 * converting the same layer twice gave two digests: nothing reused at the destination, and no stable
 * digest to sign. Feeding the compressor pieces of one fixed size makes the output a function of
 * the bytes alone. (gzip through zlib does not have this problem.)
 */
import * as stream from 'node:stream';
import { type Duplex, Transform, type TransformCallback } from 'node:stream';
import { createZstdCompress, constants as zc } from 'node:zlib';

/** The size of every piece the compressor gets (the last one may be shorter). */
const ZSTD_STREAM_PIECE = 256 * 1024;

/** Cuts a byte stream into pieces of exactly `size` bytes, whatever its own chunks (the last may be shorter). */
class FixedPieces extends Transform {
  readonly #size: number;
  #pending: Buffer[] = [];
  #held = 0;

  constructor(size = ZSTD_STREAM_PIECE) {
    super();
    this.#size = size;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#pending.push(chunk);
    this.#held += chunk.length;
    if (this.#held >= this.#size) {
      let all = Buffer.concat(this.#pending, this.#held);
      while (all.length >= this.#size) {
        this.push(all.subarray(0, this.#size));
        all = all.subarray(this.#size);
      }
      this.#pending = all.length > 0 ? [all] : [];
      this.#held = all.length;
    }
    cb();
  }

  override _flush(cb: TransformCallback): void {
    if (this.#held > 0) this.push(Buffer.concat(this.#pending, this.#held));
    this.#pending = [];
    this.#held = 0;
    cb();
  }
}

/** stream.compose (Node >= 16.9), which this @types/node does not declare. */
const compose = (stream as unknown as { compose: (...streams: NodeJS.ReadWriteStream[]) => Duplex }).compose;

/** A zstd compressor (at `level`, zstd's default without one) fed in fixed pieces: same bytes in, same bytes out. */
export function createStableZstdCompress(level?: number): Duplex {
  return compose(new FixedPieces(), createZstdCompress(level === undefined ? {} : { params: { [zc.ZSTD_c_compressionLevel]: level } }));
}
