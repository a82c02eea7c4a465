/**
 * A streaming HTTP reverse proxy in front of a test registry that injects faults on demand:
 * canned statuses (429 + Retry-After, 500...), corrupted bodies, connections dropped mid-body,
 * delays and resets. Everything else is forwarded unchanged, bodies streamed both ways with
 * backpressure, so 64 MiB layers pass through without being buffered.
 *
 *   const proxy = await startFaultProxy(reg.url);
 *   proxy.addFault({ method: 'GET', pathRegex: /\/blobs\/sha256:/, kind: 'status', status: 429, headers: { 'Retry-After': '1' } });
 *   // ... point the client at docker://${proxy.host}/...
 *   expect(proxy.hits(/\/blobs\//).map((h) => h.status)).toEqual([429, 200]);
 */
import { Agent, createServer, request, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { LOOPBACK } from '../../hack/lib/harness/net.js';

/** What a matching request gets instead of (or on top of) plain forwarding. */
export type FaultAction =
  /** Answer with this status without contacting the target. Default body: a distribution-style error. */
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: string | Buffer | object }
  /** Forward, but flip one byte of the response body (length unchanged). Default offset: the middle. */
  | { kind: 'corrupt'; offset?: number }
  /** Forward status, headers and the first `afterBytes` body bytes, then destroy the connection. */
  | { kind: 'drop'; afterBytes: number }
  /** Wait `ms` before forwarding. */
  | { kind: 'delay'; ms: number }
  /** Destroy the client connection without any response. */
  | { kind: 'reset' };

export interface FaultMatch {
  /** HTTP method, case-insensitive; any method when omitted. */
  method?: string;
  /** Tested against the request target: path plus query string (`/v2/a/blobs/sha256:..?x=1`). */
  pathRegex: RegExp | string;
  /** How many matching requests the fault applies to; default 1. `Infinity` for all. */
  times?: number;
}

export type FaultRule = FaultMatch & FaultAction;

export interface FaultHandle {
  /** Matching requests the fault will still apply to. */
  remaining(): number;
  remove(): void;
}

export interface HitEntry {
  method: string;
  /** Path plus query string, as the client sent it. */
  path: string;
  /** Status sent to the client; 0 if the connection was reset before any response. */
  status: number;
  /** Request headers as received from the client. */
  headers: IncomingHttpHeaders;
  /** Response headers as sent to the client (after Location rewriting). */
  responseHeaders: OutgoingHttpHeaders;
  /** The fault applied to this request, if any. */
  fault?: FaultAction['kind'];
}

export interface FaultProxy {
  /** `127.0.0.1:PORT`: use as the registry host in references. */
  readonly host: string;
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  readonly target: string;
  addFault(rule: FaultRule): FaultHandle;
  clearFaults(): void;
  /** Requests seen so far, oldest first, optionally only those whose path matches. */
  hits(pathRegex?: RegExp | string): HitEntry[];
  clearHits(): void;
  stop(): Promise<void>;
}

// Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection and must not be forwarded; Node
// sets its own framing (Content-Length or chunked) for each side.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

interface ActiveRule {
  rule: FaultRule;
  method?: string;
  re: RegExp;
  left: number;
}

export async function startFaultProxy(targetUrl: string): Promise<FaultProxy> {
  const target = new URL(targetUrl);
  if (target.protocol !== 'http:') throw new Error(`fault proxy forwards plain http only, got ${targetUrl}`);
  const targetOrigin = target.origin;
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  const rules: ActiveRule[] = [];
  const log: HitEntry[] = [];
  let proxyOrigin = '';

  const takeFault = (method: string, path: string): FaultRule | undefined => {
    for (const r of rules) {
      if (r.left <= 0) continue;
      if (r.method !== undefined && r.method !== method) continue;
      if (!r.re.test(path)) continue;
      r.left--;
      return r.rule;
    }
    return undefined;
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const method = (req.method ?? 'GET').toUpperCase();
    const path = req.url ?? '/';
    const entry: HitEntry = { method, path, status: 0, headers: { ...req.headers }, responseHeaders: {} };
    log.push(entry);
    const fault = takeFault(method, path);
    if (fault !== undefined) entry.fault = fault.kind;

    const respond = (status: number, headers: OutgoingHttpHeaders): void => {
      entry.status = status;
      entry.responseHeaders = headers;
      res.writeHead(status, headers);
    };

    if (fault?.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'status') {
      req.resume(); // drain any upload body; it goes nowhere
      const body = faultBody(fault);
      respond(fault.status, {
        'Content-Type': body.type,
        'Content-Length': String(body.data.length),
        'Docker-Distribution-Api-Version': 'registry/2.0',
        ...fault.headers,
      });
      res.end(method === 'HEAD' ? undefined : body.data);
      return;
    }

    const forward = (): void => {
      if (req.destroyed) return;
      const headers = stripHopByHop(req.headers);
      headers.host = target.host;
      const upstream = request({
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port,
        method,
        path,
        headers,
        agent,
      });
      // A client that goes away mid-transfer must not leave the upstream transfer running.
      res.on('close', () => {
        if (!res.writableFinished) upstream.destroy();
      });
      upstream.on('error', (err) => {
        if (!res.headersSent) {
          const data = Buffer.from(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: `fault proxy: upstream error: ${err.message}` }] }));
          respond(502, { 'Content-Type': 'application/json', 'Content-Length': String(data.length) });
          res.end(data);
        } else {
          res.destroy();
        }
      });
      upstream.on('response', (up) => {
        const outHeaders = responseHeaders(up, targetOrigin, proxyOrigin);
        if (fault?.kind === 'drop') return dropAfter(up, res, fault.afterBytes, () => respond(up.statusCode ?? 502, outHeaders));
        respond(up.statusCode ?? 502, outHeaders);
        if (fault?.kind === 'corrupt') {
          const len = Number(up.headers['content-length']);
          const offset = fault.offset ?? (Number.isFinite(len) && len > 0 ? Math.floor(len / 2) : 0);
          pipeline(up, new FlipByte(offset), res, () => {});
        } else {
          pipeline(up, res, () => {});
        }
      });
      // pipeline ends the upstream request when the client body ends, or destroys it on error.
      pipeline(req, upstream, () => {});
    };

    if (fault?.kind === 'delay') setTimeout(forward, fault.ms);
    else forward();
  };

  const server = createServer(handle);
  // Registries answer big uploads slowly on a 2-core CI box; do not time requests out here.
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = `${LOOPBACK}:${port}`;
  proxyOrigin = `http://${host}`;

  const toRe = (p: RegExp | string): RegExp => (typeof p === 'string' ? new RegExp(p) : p);
  return {
    host,
    url: proxyOrigin,
    target: targetOrigin,
    addFault(rule) {
      const active: ActiveRule = {
        rule,
        method: rule.method?.toUpperCase(),
        re: toRe(rule.pathRegex),
        left: rule.times ?? 1,
      };
      rules.push(active);
      return {
        remaining: () => active.left,
        remove: () => {
          const i = rules.indexOf(active);
          if (i >= 0) rules.splice(i, 1);
        },
      };
    },
    clearFaults: () => void rules.splice(0),
    hits(pathRegex) {
      const re = pathRegex === undefined ? undefined : toRe(pathRegex);
      return log.filter((h) => re === undefined || re.test(h.path)).map((h) => ({ ...h }));
    },
    clearHits: () => void log.splice(0),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          agent.destroy();
          resolve();
        });
      }),
  };
}

function stripHopByHop(h: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  // `Connection: foo` also names per-connection headers to drop.
  const named = new Set(
    String(h.connection ?? '')
      .toLowerCase()
      .split(',')
      .map((s) => s.trim()),
  );
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || HOP_BY_HOP.has(k) || named.has(k)) continue;
    out[k] = v;
  }
  return out;
}

/** Upstream response headers, repeated headers kept apart, Location pointed back at the proxy. */
function responseHeaders(up: IncomingMessage, targetOrigin: string, proxyOrigin: string): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const named = new Set(
    String(up.headers.connection ?? '')
      .toLowerCase()
      .split(',')
      .map((s) => s.trim()),
  );
  for (const [k, values] of Object.entries(up.headersDistinct)) {
    if (values === undefined || HOP_BY_HOP.has(k) || named.has(k)) continue;
    out[k] = values.length === 1 ? values[0] : values;
  }
  const loc = out.location;
  // The registry builds absolute upload URLs from the Host header we sent (the target's); the
  // client must keep talking to the proxy or faults on PATCH/PUT would never be seen.
  if (typeof loc === 'string' && loc.startsWith(targetOrigin)) out.location = proxyOrigin + loc.slice(targetOrigin.length);
  return out;
}

/** Sends headers and `afterBytes` body bytes, then destroys the connection (the "drop" fault). */
function dropAfter(up: IncomingMessage, res: ServerResponse, afterBytes: number, writeHead: () => void): void {
  writeHead();
  res.flushHeaders();
  let left = Math.max(0, afterBytes);
  let cut = false;
  const cutNow = (): void => {
    if (cut) return;
    cut = true;
    up.destroy();
    const sock = res.socket;
    // Destroy only after what we wrote has reached the kernel, or the client would not even see
    // the headers; writes on one socket complete in order, so an empty write is the marker.
    if (sock !== null && !sock.destroyed) sock.write(Buffer.alloc(0), () => sock.destroy());
    else res.destroy();
  };
  if (left === 0) return cutNow();
  up.on('data', (chunk: Buffer) => {
    if (cut) return;
    const part = chunk.length > left ? chunk.subarray(0, left) : chunk;
    left -= part.length;
    const ok = res.write(part);
    if (left === 0) cutNow();
    else if (!ok) {
      up.pause();
      res.once('drain', () => up.resume());
    }
  });
  // A body shorter than afterBytes is still cut rather than completed: the rule asked for a drop.
  up.on('end', cutNow);
  up.on('error', cutNow);
}

/** XORs the byte at `offset` of the stream with 0xff; every other byte passes untouched. */
class FlipByte extends Transform {
  #pos = 0;
  readonly #offset: number;
  constructor(offset: number) {
    super();
    this.#offset = offset;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const start = this.#pos;
    this.#pos += chunk.length;
    if (this.#offset >= start && this.#offset < this.#pos) {
      const copy = Buffer.from(chunk);
      copy[this.#offset - start] ^= 0xff;
      cb(null, copy);
    } else {
      cb(null, chunk);
    }
  }
}

function faultBody(f: Extract<FaultAction, { kind: 'status' }>): { type: string; data: Buffer } {
  if (Buffer.isBuffer(f.body)) return { type: 'application/octet-stream', data: f.body };
  if (typeof f.body === 'string') return { type: 'text/plain; charset=utf-8', data: Buffer.from(f.body) };
  if (f.body !== undefined) return { type: 'application/json', data: Buffer.from(JSON.stringify(f.body)) };
  const code = f.status === 429 ? 'TOOMANYREQUESTS' : f.status === 401 ? 'UNAUTHORIZED' : f.status === 404 ? 'NOT_FOUND' : 'UNKNOWN';
  return { type: 'application/json', data: Buffer.from(JSON.stringify({ errors: [{ code, message: `injected fault: HTTP ${f.status}` }] })) };
}
