import { createHash } from 'node:crypto';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Descriptor } from '../oci/descriptor.js';
import { digestAlgorithm, type Digest } from '../oci/digest.js';
import { DigestMismatchError, SizeMismatchError, StevedoreError } from '../util/errors.js';
import { rootLogger } from '../util/log.js';
import { repositoryScope } from './auth.js';
import { cancelUpload, startUpload, withDigest } from './blobs.js';
import type { PreparedRequest, RegistryClient } from './client.js';
import { isRetryableStatus, parseErrorBody, RegistryError } from './errors.js';
import { backoffDelay, DEFAULT_RETRY, parseRetryAfter, waitBackoff } from './retry.js';

/*
 * Registry-to-registry blob transfer on two plain sockets, for the bulk of a cold copy.
 *
 * Through undici, every 64 KiB the kernel hands over became a fresh ArrayBuffer, went through the
 * HTTP parser's copy, a body stream and the upload's stream, and those buffers drove V8 into a full
 * garbage collection every 64 MiB or so: for 512 MiB about 2.2 s of CPU in our process, against
 * 0.4 s for the sha256 itself, on a machine where the two registries need ~3 s of the same 2 cores.
 * Here the source socket reads into one reused buffer (`onread`); each read is hashed and written
 * to the destination socket, and the source reads again once that write has left the buffer (at
 * once, unless the destination pushes back): no allocation per chunk, no stream machinery, about
 * half the CPU.
 *
 * It covers the common case only and says so (returns false) before anything is uploaded when the
 * source answers anything else than a plain 200 with the blob's exact Content-Length (auth
 * challenges, errors, chunked or encoded bodies): the caller then copies through undici, which
 * handles every case. Redirects (a CDN or object store) are followed. The guarantees are the same as
 * the stream path's, and one stronger: every byte is hashed; more bytes than the descriptor's size
 * fail at once; the last read is written only after the digest is checked, so a corrupt source never
 * reaches the destination complete (the registry's own ?digest= check would refuse it anyway); a
 * source connection that breaks is resumed with a Range request; a failed upload is cancelled.
 */

const BUFFER_SIZE = 256 * 1024;
const MAX_HEAD_BYTES = 64 * 1024;
const IDLE_TIMEOUT_MS = 300_000;

export interface PipeOptions {
  signal?: AbortSignal;
  /** Consecutive broken source connections without progress before giving up. */
  resumes?: number;
  /** Bytes received so far, called as they arrive (for progress). */
  onBytes?: (received: number) => void;
}

interface ResponseHead {
  status: number;
  headers: Map<string, string>;
}

/** Parses `HTTP/1.x NNN reason` and header lines; undefined for anything that is not HTTP/1. */
function parseHead(text: string): ResponseHead | undefined {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!m) return undefined;
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
  }
  return { status: Number(m[1]), headers };
}

function requestHead(method: string, url: URL, headers: Record<string, string>): string {
  let head = `${method} ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\nconnection: close\r\n`;
  for (const [k, v] of Object.entries(headers)) {
    if (/[\r\n]/.test(k) || /[\r\n]/.test(v)) throw new StevedoreError('INVALID_INPUT', `header ${k} holds a line break`);
    head += `${k}: ${v}\r\n`;
  }
  return head + '\r\n';
}

/** A connection to `url`'s origin; `onread` (one reused read buffer) applies to plain TCP only. */
function openSocket(url: URL, insecure: boolean, onread: { buffer: Buffer; callback: (n: number, buf: Buffer) => boolean } | undefined): Socket {
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const sock =
    url.protocol === 'https:'
      ? tlsConnect({ host, port, rejectUnauthorized: !insecure, ALPNProtocols: ['http/1.1'], ...(isIP(host) ? {} : { servername: host }) })
      : netConnect({ host, port, ...(onread ? { onread } : {}) });
  sock.setNoDelay(true);
  sock.setTimeout(IDLE_TIMEOUT_MS, () => sock.destroy(new StevedoreError('NETWORK', `${url.host}: no data for ${IDLE_TIMEOUT_MS / 1000} s`, { retryable: true })));
  return sock;
}

/**
 * One source response being read. Plain TCP reads into one reused buffer (`onread`: no allocation
 * per read); TLS reads arrive as Node's own buffers ('data' events), because TLS may deliver
 * decrypted bytes after reading was asked to stop, which a reused buffer cannot allow. The head is
 * parsed from the first bytes; then body bytes go to `onBody`, which returns false while the
 * bytes are still in use (a queued write): reading pauses until `resume()`.
 */
class SourceConnection {
  readonly head: Promise<ResponseHead>;
  readonly #sock: Socket;
  readonly #reusesBuffer: boolean;
  #headBuf: Buffer | undefined = Buffer.alloc(0);
  #pending: Buffer | undefined;
  #resolveHead!: (h: ResponseHead) => void;
  #rejectHead!: (e: Error) => void;
  #paused = false;
  #broken = false;
  #closed: Error | undefined;
  onBody: ((buf: Buffer, start: number, end: number) => boolean) | undefined;
  onClose: ((err: Error | undefined) => void) | undefined;

  constructor(url: URL, insecure: boolean, headers: Record<string, string>) {
    this.head = new Promise((res, rej) => {
      this.#resolveHead = res;
      this.#rejectHead = rej;
    });
    this.#reusesBuffer = url.protocol !== 'https:';
    this.#sock = openSocket(url, insecure, this.#reusesBuffer ? { buffer: Buffer.allocUnsafe(BUFFER_SIZE), callback: (n, buf) => this.#onRead(buf, n) } : undefined);
    if (!this.#reusesBuffer) {
      this.#sock.on('data', (chunk: Buffer) => {
        if (!this.#onRead(chunk, chunk.length)) this.#sock.pause();
      });
    }
    this.#sock.on('error', () => undefined); // reported through 'close'
    this.#sock.once('close', () => {
      const err = new StevedoreError('NETWORK', `${url.host}: connection closed${this.#broken ? ' (read while paused)' : ''}`, { retryable: true });
      if (this.#headBuf) this.#rejectHead(err);
      // A server that sends a small body with its head and closes (`connection: close`) may be
      // gone before the body was taken: the close is reported after the pending bytes.
      this.#closed = err;
      if (!this.#paused) this.onClose?.(err);
    });
    this.#sock.write(requestHead('GET', url, headers));
  }

  /** Handles `n` bytes of `buf`; false asks for no more reads until `resume()`. */
  #onRead(buf: Buffer, n: number): boolean {
    if (this.#headBuf) {
      const all = Buffer.concat([this.#headBuf, buf.subarray(0, n)]);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) {
        if (all.length > MAX_HEAD_BYTES) this.#sock.destroy();
        this.#headBuf = all;
        return true;
      }
      this.#headBuf = undefined;
      const head = parseHead(all.subarray(0, end).toString('latin1'));
      if (!head) {
        this.#sock.destroy();
        this.#rejectHead(new StevedoreError('NETWORK', 'not an HTTP/1 response', { retryable: true }));
        return false;
      }
      // Body bytes that came with the head (a copy: the read buffer is reused) wait until the
      // caller has decided to take the body.
      const rest = all.subarray(end + 4);
      this.#pending = rest.length > 0 ? Buffer.from(rest) : undefined;
      this.#paused = true;
      this.#resolveHead(head);
      return false;
    }
    if (this.#paused || !this.onBody) {
      if (this.#reusesBuffer) {
        // A read into the shared buffer while a write may still point into it: never expected on
        // TCP (a paused read is stopped), and never risked: the transfer fails and is retried.
        this.#broken = true;
        this.#sock.destroy();
        return false;
      }
      this.#pending = this.#pending ? Buffer.concat([this.#pending, buf.subarray(0, n)]) : buf.subarray(0, n);
      return false;
    }
    if (this.onBody(buf, 0, n)) return true;
    this.#paused = true;
    return false;
  }

  /** Starts (or continues) delivering body bytes after the head was accepted or a pause. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending && !this.onBody!(pending, 0, pending.length)) {
      this.#paused = true;
      return;
    }
    if (this.#closed) this.onClose?.(this.#closed);
    else this.#sock.resume();
  }

  get paused(): boolean {
    return this.#paused;
  }

  destroy(): void {
    this.onClose = undefined;
    this.#sock.destroy();
  }
}

/**
 * Copies one blob from `src` to `dest` on raw sockets. Resolves true when the destination has
 * committed it; false when the source's answer is not the plain case this handles (nothing was
 * uploaded then, and the caller should copy through the stream path). Errors are StevedoreErrors,
 * retryable where a retry can help.
 */
export async function pipeBlob(
  src: { client: RegistryClient; repository: string },
  dest: { client: RegistryClient; repository: string },
  desc: Descriptor,
  opts: PipeOptions = {},
): Promise<boolean> {
  const what = `blob ${desc.digest} from ${src.client.registry}/${src.repository}`;
  const path = `/v2/${src.repository}/blobs/${desc.digest}`;
  const pullScopes = [repositoryScope(src.repository, ['pull'])];
  const log = rootLogger.child({ registry: src.client.registry, repo: src.repository, digest: desc.digest });

  /** Opens the source at byte `from`, following redirects; undefined when it is not the plain case. */
  const openSource = async (from: number): Promise<{ conn: SourceConnection; skip: number } | undefined> => {
    let prepared: PreparedRequest = await src.client.prepare(path, pullScopes, opts.signal);
    for (let redirects = 0; ; redirects++) {
      const headers = { ...prepared.headers, ...(from > 0 ? { range: `bytes=${from}-` } : {}) };
      const conn = new SourceConnection(prepared.url, prepared.insecure, headers);
      const head = await conn.head;
      const h = head.headers;
      if ([301, 302, 303, 307, 308].includes(head.status) && h.get('location') && redirects < 5) {
        conn.destroy();
        const next = new URL(h.get('location')!, prepared.url);
        // Credentials go to the registry only, never to where it redirects (a CDN, a bucket).
        prepared = { url: next, headers: next.origin === prepared.url.origin ? prepared.headers : { 'user-agent': prepared.headers['user-agent'] ?? 'stevedore' }, insecure: prepared.insecure };
        continue;
      }
      const plain = !h.has('transfer-encoding') && (!h.has('content-encoding') || h.get('content-encoding') === 'identity');
      const length = Number(h.get('content-length'));
      const ranged = from > 0 && head.status === 206 && length === desc.size - from && (h.get('content-range') ?? '').startsWith(`bytes ${from}-`);
      const ok = plain && ((head.status === 200 && length === desc.size) || ranged);
      if (!ok) {
        conn.destroy();
        // The stream path asks again at once: a rate limit or a server error is waited out here
        // first (Retry-After honoured), as the stream path would between its own attempts.
        if (isRetryableStatus(head.status)) await waitBackoff(backoffDelay(DEFAULT_RETRY, 0, parseRetryAfter(h.get('retry-after'))), opts.signal);
        return undefined;
      }
      return { conn, skip: head.status === 200 ? from : 0 };
    }
  };

  if (opts.signal?.aborted) throw opts.signal.reason as Error;
  // One connection on each side, within each registry's connection limit.
  const releaseSrc = src.client.tryAcquirePipeSlot();
  const releaseDest = releaseSrc && dest.client.tryAcquirePipeSlot();
  if (!releaseSrc || !releaseDest) {
    releaseSrc?.();
    return false;
  }
  try {
    return await transfer();
  } finally {
    releaseSrc();
    releaseDest();
  }

  async function transfer(): Promise<boolean> {
    const first = await openSource(0).catch(() => undefined);
    if (!first) return false;

    let location: string;
    try {
      location = await startUpload(dest.client, dest.repository, opts.signal);
    } catch (err) {
      first.conn.destroy();
      throw err;
    }
    const pushScopes = [repositoryScope(dest.repository, ['pull', 'push'])];
    let upload: Socket | undefined;
    let current: SourceConnection | undefined = first.conn;
    try {
      const putReq = await dest.client.prepare(withDigest(location, desc.digest), pushScopes, opts.signal);
      await new Promise<void>((resolve, reject) => {
        let settled = false;
        let received = 0;
        let skip = first.skip;
        let connectionStart = 0;
        let resumes = 0;
        let sent = 0;
        const hash = createHash(digestAlgorithm(desc.digest));
        let waiting = false;
        let response = Buffer.alloc(0);

        const finish = (err?: Error) => {
          if (settled) return;
          settled = true;
          opts.signal?.removeEventListener('abort', onAbort);
          current?.destroy();
          current = undefined;
          // The upload connection was asked to close; on success the server has answered, on an
          // error it must not receive anything more.
          upload?.destroy();
          if (err) reject(err);
          else resolve();
        };
        const onAbort = () => finish((opts.signal!.reason as Error) ?? new StevedoreError('ABORTED', 'aborted'));
        opts.signal?.addEventListener('abort', onAbort, { once: true });

        // The destination: its answer comes once it has every byte (or early, on an error).
        /**
         * Settles on the destination's answer: once its head and body (by Content-Length) are in,
         * or when the connection closes. A server that answers early (an error) is believed at once.
         */
        const settleOnResponse = (closed: boolean) => {
          if (settled) return;
          const text = response.toString('latin1');
          const end = text.indexOf('\r\n\r\n');
          const head = end >= 0 ? parseHead(text.slice(0, end)) : undefined;
          if (!head) {
            if (closed) {
              finish(new StevedoreError('NETWORK', `PUT ${putReq.url.host}: connection closed after ${sent} of ${desc.size} bytes${uploadError ? `: ${uploadError.message}` : ''}`, { cause: uploadError, retryable: true }));
            }
            return;
          }
          const bodyText = text.slice(end + 4);
          const declared = Number(head.headers.get('content-length') ?? NaN);
          if (!closed && !(bodyText.length >= declared)) return; // the body is still coming
          if ((head.status === 201 || head.status === 204) && sent === desc.size) {
            finish();
            return;
          }
          const json = bodyText.slice(bodyText.indexOf('{'), bodyText.lastIndexOf('}') + 1);
          const details = parseErrorBody(json);
          const why = details[0] ? `${details[0].code}: ${details[0].message}` : `HTTP ${head.status}`;
          // A refused token (expired mid-transfer) is not kept for the retry.
          if (head.status === 401) dest.client.forgetTokens();
          const err = new RegistryError(`PUT ${putReq.url.origin}${putReq.url.pathname}: ${head.status} ${why}`, { status: head.status, url: putReq.url.toString(), details });
          finish(isRetryableStatus(head.status) || head.status === 401 ? new StevedoreError(err.code, err.message, { cause: err, retryable: true }) : err);
        };
        const onResponse = (buf: Buffer, n: number): boolean => {
          if (response.length < MAX_HEAD_BYTES) response = Buffer.concat([response, buf.subarray(0, n)]);
          settleOnResponse(false);
          return true;
        };
        upload = openSocket(putReq.url, putReq.insecure, putReq.url.protocol === 'https:' ? undefined : { buffer: Buffer.allocUnsafe(16 * 1024), callback: (n, buf) => onResponse(buf, n) });
        if (putReq.url.protocol === 'https:') upload.on('data', (chunk: Buffer) => onResponse(chunk, chunk.length));
        let uploadError: Error | undefined;
        upload.on('error', (err) => (uploadError ??= err));
        upload.once('close', () => settleOnResponse(true));
        upload.write(requestHead('PUT', putReq.url, { ...putReq.headers, 'content-type': 'application/octet-stream', 'content-length': String(desc.size) }));

        /** Writes to the destination; true when the write already left `buf` (it may be reused). */
        const send = (buf: Buffer, start: number, end: number): boolean => {
          sent += end - start;
          upload!.write(buf.subarray(start, end), () => {
            if (!waiting) return;
            waiting = false;
            current?.resume();
          });
          // A write the kernel took at once has already left the buffer; one that was queued still
          // points into it, so the source waits for that write's callback before reading again.
          if (upload!.writableLength === 0) return true;
          waiting = true;
          return false;
        };

        const onBody = (buf: Buffer, start: number, end: number): boolean => {
          if (settled) return false;
          if (skip > 0) {
            const n = Math.min(skip, end - start);
            skip -= n;
            start += n;
            if (start === end) return true;
          }
          received += end - start;
          if (received > desc.size) {
            finish(new SizeMismatchError(what, desc.size, received));
            return false;
          }
          hash.update(buf.subarray(start, end));
          opts.onBytes?.(received);
          if (received < desc.size) return send(buf, start, end);
          // The last bytes go only once the digest is known to be right.
          const actual: Digest = `${digestAlgorithm(desc.digest)}:${hash.digest('hex')}`;
          if (actual !== desc.digest) {
            finish(new DigestMismatchError(what, desc.digest, actual));
            return false;
          }
          send(buf, start, end);
          // Nothing more to read: the source is closed when the destination has answered.
          return false;
        };

        const onClose = (err: Error | undefined) => {
          if (settled || received === desc.size) return;
          // The source broke before the end: resume with a Range request, as the stream path does.
          current = undefined;
          if (received > connectionStart) resumes = 0;
          if (resumes >= (opts.resumes ?? 5)) {
            finish(new StevedoreError('NETWORK', `${what}: download broke after ${received} of ${desc.size} bytes: ${err?.message ?? 'closed'}`, { retryable: true }));
            return;
          }
          const delay = backoffDelay(DEFAULT_RETRY, resumes);
          resumes++;
          log.info({ received, size: desc.size, delay }, 'blob download broke; resuming with Range');
          void (async () => {
            try {
              await waitBackoff(delay, opts.signal);
              // Held bytes are part of what was received: ask for what comes after them.
              const next = await openSource(received);
              if (settled) {
                next?.conn.destroy();
                return;
              }
              if (!next) throw new StevedoreError('NETWORK', `${what}: the source did not answer the resume plainly`, { retryable: true });
              attach(next.conn, next.skip);
            } catch (reopenErr) {
              if (!settled) {
                connectionStart = received;
                onClose(reopenErr as Error);
              }
            }
          })();
        };

        const attach = (conn: SourceConnection, skipBytes: number) => {
          current = conn;
          skip = skipBytes;
          connectionStart = received;
          conn.onBody = onBody;
          conn.onClose = onClose;
          conn.resume();
        };
        attach(first.conn, first.skip);
      });
      return true;
    } catch (err) {
      current?.destroy();
      upload?.destroy();
      await cancelUpload(dest.client, dest.repository, location);
      throw err;
    }
  }
}
