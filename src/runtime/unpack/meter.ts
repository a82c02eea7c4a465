import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { Digest } from '../../oci/digest.js';
import { LayerTooLargeError } from './errors.js';

/**
 * Sits between the decompressor and the tar parser: hashes the uncompressed tar (the layer's diffID,
 * without a second pass) and stops the flow the moment it exceeds the byte limit. Because zlib
 * honours backpressure, a decompression bomb is cut off after at most `maxBytes` plus one chunk.
 */
export class LayerMeter extends Transform {
  readonly #hash = createHash('sha256');
  readonly #maxBytes: number;
  #bytes = 0;
  #diffID: Digest | undefined;

  constructor(maxBytes: number) {
    super();
    this.#maxBytes = maxBytes;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** sha256 of every uncompressed byte; defined once the stream has ended. */
  get diffID(): Digest | undefined {
    return this.#diffID;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#bytes += chunk.length;
    if (this.#bytes > this.#maxBytes) {
      cb(new LayerTooLargeError('bytes', this.#maxBytes));
      return;
    }
    this.#hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.#diffID = `sha256:${this.#hash.digest('hex')}`;
    cb();
  }
}
