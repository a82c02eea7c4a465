/**
 * The one tar reader: every tar stream the engine reads (image layers when unpacked, staged or
 * catalogued; `oci-archive:`/`docker-archive:` files; GNU tar's output in the builder) goes through
 * readTar, so the parser's pitfalls are handled once:
 * - The parser (tar-stream, a streamx writable) is fed by hand, chunk by chunk as they come, so its
 *   errors reach one place and no chunk is copied or concatenated on the way.
 * - The first error of the source, the parser, the entry handler or an abort wins; the source and
 *   the parser are torn down at once so nothing keeps reading, and the call rejects with that error.
 * - A directory entry whose header (or a PAX `size` record) announces data is refused: tar-stream
 *   would hand it a data stream that never ends and the next entry would be awaited forever
 *   (found by test/fuzz).
 * - When an entry's data dies with a generic "Stream was destroyed" because the parser failed, the
 *   parser's own error (what really happened) is the one reported.
 * What an entry means (names, links, whiteouts, where it may be written) is the caller's business.
 */
import type { Readable } from 'node:stream';
import { InvalidInputError } from '../errors.js';
import { tarStream } from './tar-stream.js';

/** A tar header as the parser decodes it (ustar fields with PAX records applied). */
export type TarHeader = import('tar-stream').Header;

/** One entry: its header and its data, which must be read or left before the handler returns. */
export type TarEntryData = AsyncIterable<Buffer> & { header: TarHeader; resume(): unknown };

export interface ReadTarOptions {
  signal?: AbortSignal;
  /** The error for an entry refused by the reader's own rules; default InvalidInputError naming the entry. */
  refuse?: (name: string, reason: string) => Error;
  /** Turns what an entry's handler threw into the error the read fails with (e.g. to name the entry). */
  entryError?: (name: string, err: unknown) => unknown;
  /** Called once, on the first failure, to tear down what feeds `source` (it is destroyed here). */
  onFail?: (err: unknown) => void;
}

type Parser = ReturnType<typeof import('tar-stream').extract>;

/** Waits until the parser wants more, or fails if it is torn down meanwhile. */
function drained(w: Parser): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = (): void => {
      w.off('close', onClose);
      resolve();
    };
    const onClose = (): void => {
      w.off('drain', onDrain);
      reject(new Error('tar parser closed'));
    };
    w.once('drain', onDrain);
    w.once('close', onClose);
  });
}

/**
 * Reads the tar stream `source` (already decompressed) entry by entry, handing each one in tar order
 * to `onEntry`; whatever data the handler leaves is skipped without being kept. Resolves with the
 * number of entries read once the stream has ended; rejects with the first error (see the header).
 */
export async function readTar(source: Readable, onEntry: (entry: TarEntryData) => Promise<void>, opts: ReadTarOptions = {}): Promise<number> {
  const { signal } = opts;
  signal?.throwIfAborted();
  const refuse = opts.refuse ?? ((name: string, reason: string) => new InvalidInputError(`refusing tar entry ${JSON.stringify(name)}: ${reason}`));
  const extract = tarStream().extract();
  let failure: unknown;
  let failed = false;
  const fail = (err: unknown): void => {
    if (failed) return;
    failed = true;
    failure = err;
    source.destroy();
    opts.onFail?.(err);
    extract.destroy(err instanceof Error ? err : new Error(String(err)));
  };
  // The parser reports a truncated or corrupt tar only as an 'error' event (this also keeps the
  // event from going unhandled when it is torn down here).
  extract.on('error', (err: Error) => fail(err));
  source.on('error', (err: Error) => fail(err));
  const extractClosed = new Promise<void>((resolve) => extract.once('close', () => resolve()));
  const onAbort = (): void => fail(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });

  let entries = 0;
  try {
    // 'data' events hand over each chunk as it is (an async iterator's read() would concatenate
    // whatever is buffered: one more copy of every byte).
    let ended = false;
    const fed = new Promise<void>((resolve) => {
      source.on('data', (chunk: Buffer) => {
        if (extract.write(chunk)) return;
        source.pause();
        drained(extract).then(
          () => source.resume(),
          (err: unknown) => fail(err),
        );
      });
      source.once('end', () => {
        ended = true;
        (extract as unknown as { end(): void }).end();
        resolve();
      });
      // Torn down by fail(), or upstream: a source that closes before its end is a failure (the
      // parser would otherwise wait for the rest forever).
      source.once('close', () => {
        if (!ended) fail(new Error('tar stream closed before its end'));
        resolve();
      });
    });
    const iterator = (extract as unknown as AsyncIterable<TarEntryData>)[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<TarEntryData>;
      try {
        next = await iterator.next();
      } catch (err) {
        fail(err);
        break;
      }
      if (next.done) break;
      const data = next.value;
      entries++;
      try {
        if (data.header.type === 'directory' && (data.header.size ?? 0) > 0) {
          throw refuse(data.header.name, `a directory entry announcing ${data.header.size} bytes of data`);
        }
        await onEntry(data);
        data.resume();
      } catch (err) {
        if ((err as { code?: unknown }).code === 'STREAM_DESTROYED') await extractClosed;
        fail(opts.entryError ? opts.entryError(data.header.name, err) : err);
        break;
      }
    }
    await fed;
    if (failed) throw failure;
    return entries;
  } catch (err) {
    fail(err);
    throw failure;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
