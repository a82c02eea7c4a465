import type { Readable } from 'node:stream';
import { TooLargeError } from './errors.js';

/** Reads a small stream (a config, a manifest) into memory, refusing more than `limit` bytes. */
export async function streamToBuffer(stream: Readable, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of stream) {
    const b = chunk as Buffer;
    n += b.length;
    if (n > limit) {
      stream.destroy();
      throw new TooLargeError(what, limit);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}
