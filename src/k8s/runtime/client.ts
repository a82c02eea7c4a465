/**
 * A small JSON client for the Kubernetes API on node:https, authenticated from a KubeConfig.
 * Bodies pass through untouched (the typed client-node models drop unknown keys), and watches are
 * streamed line by line so the informer controls resourceVersion and 410 Gone itself.
 */
import { Agent, request, type AgentOptions, type RequestOptions } from 'node:https';
import { request as httpRequest } from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';

/** A non-2xx answer of the API server, with the Status body's reason and message. */
export class ApiError extends Error {
  readonly status: number;
  readonly reason: string;
  constructor(status: number, reason: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.reason = reason;
  }
}

/** A kept-alive connection the server had already closed (internal: retried once by #send). */
class StaleSocketError extends Error {
  constructor(cause: Error) {
    super(cause.message, { cause });
    this.name = 'StaleSocketError';
  }
}

export const isNotFound = (err: unknown): boolean => err instanceof ApiError && err.status === 404;
export const isConflict = (err: unknown): boolean => err instanceof ApiError && err.status === 409;
export const isGone = (err: unknown): boolean => err instanceof ApiError && err.status === 410;

export type PatchType = 'merge' | 'json';
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
};

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

/** The TLS settings of a request that decide which connections it may share. */
const TLS_KEYS = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'] as const;

export class KubeClient {
  readonly #kc: KubeConfig;
  readonly #server: URL;
  readonly #proxied: boolean;
  #agent?: { agent: Agent; tls: Pick<AgentOptions, (typeof TLS_KEYS)[number]> };

  constructor(kc: KubeConfig) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    this.#kc = kc;
    this.#server = new URL(cluster.server);
    this.#proxied = !!cluster.proxyUrl;
  }

  async #open(method: string, path: string, headers: Record<string, string>, signal?: AbortSignal): Promise<{ opts: RequestOptions; url: URL }> {
    const url = new URL(path, this.#server);
    const opts: RequestOptions = { method, headers: { accept: 'application/json', ...headers }, signal };
    // Asked on every request: tokens (exec plugins, projected ServiceAccount tokens) and
    // certificate files can rotate, and this is where client-node reads them.
    await this.#kc.applyToHTTPSOptions(opts);
    if (!this.#proxied && url.protocol === 'https:') opts.agent = this.#keepAliveAgent(opts);
    return { opts, url };
  }

  /**
   * client-node's agent does not keep connections alive, so every request paid a TCP and TLS
   * handshake (with a client certificate) on both ends: with 1000 objects the API server spent more
   * CPU on handshakes than on requests. One keep-alive agent, replaced if the TLS material changes.
   */
  #keepAliveAgent(opts: RequestOptions): Agent {
    const tls: Record<string, unknown> = {};
    for (const k of TLS_KEYS) if (opts[k] !== undefined) tls[k] = opts[k];
    const cur = this.#agent;
    if (cur && TLS_KEYS.every((k) => sameValue(cur.tls[k], tls[k]))) return cur.agent;
    cur?.agent.destroy();
    // Watches hold a socket each for minutes; maxFreeSockets only bounds the idle ones.
    const agent = new Agent({ ...tls, keepAlive: true, keepAliveMsecs: 30_000, maxFreeSockets: 32, scheduling: 'lifo' });
    this.#agent = { agent, tls };
    return agent;
  }

  /** Closes idle keep-alive connections (open watches end with their signals). */
  close(): void {
    this.#agent?.agent.destroy();
    this.#agent = undefined;
  }

  /**
   * Sends once more when a kept-alive connection turns out to have been closed by the server
   * (ECONNRESET on a reused socket, before any answer): the server never saw that request.
   */
  async #send(url: URL, opts: RequestOptions, body: string | undefined): Promise<IncomingMessage> {
    try {
      return await this.#sendOnce(url, opts, body);
    } catch (err) {
      if (!(err instanceof StaleSocketError)) throw err;
      return this.#sendOnce(url, opts, body);
    }
  }

  #sendOnce(url: URL, opts: RequestOptions, body: string | undefined): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = (url.protocol === 'http:' ? httpRequest : request)(url, opts, resolve);
      req.on('error', (err: NodeJS.ErrnoException) => {
        reject(req.reusedSocket && err.code === 'ECONNRESET' && !opts.signal?.aborted ? new StaleSocketError(err) : err);
      });
      req.end(body);
    });
  }

  /** One request; resolves with the parsed JSON body, rejects with ApiError on non-2xx. */
  async json<T>(method: string, path: string, init: { body?: unknown; contentType?: string; signal?: AbortSignal } = {}): Promise<T> {
    const body = init.body === undefined ? undefined : JSON.stringify(init.body);
    // content-length always: Node frames no body at all for DELETE unless told its length, and the
    // API server would then ignore DeleteOptions (preconditions, grace period).
    const headers: Record<string, string> =
      body === undefined ? {} : { 'content-type': init.contentType ?? 'application/json', 'content-length': String(Buffer.byteLength(body)) };
    const { opts, url } = await this.#open(method, path, headers, init.signal);
    const res = await this.#send(url, { ...opts, timeout: 30_000 }, body);
    let text = '';
    res.setEncoding('utf8');
    for await (const chunk of res) text += chunk as string;
    const status = res.statusCode ?? 0;
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (status < 200 || status >= 300) {
      const s = (parsed ?? {}) as { reason?: string; message?: string };
      throw new ApiError(status, s.reason ?? 'Unknown', s.message ?? `${method} ${path}: HTTP ${status} ${text.slice(0, 200)}`);
    }
    return parsed as T;
  }

  get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return this.json<T>('GET', path, { signal });
  }
  create<T>(path: string, body: unknown): Promise<T> {
    return this.json<T>('POST', path, { body });
  }
  replace<T>(path: string, body: unknown): Promise<T> {
    return this.json<T>('PUT', path, { body });
  }
  patch<T>(path: string, body: unknown, type: PatchType = 'merge'): Promise<T> {
    return this.json<T>('PATCH', path, { body, contentType: PATCH_CONTENT_TYPE[type] });
  }

  /** Streams watch events until the server ends the watch, the signal aborts, or an error occurs. */
  async *watch<T>(path: string, signal: AbortSignal): AsyncGenerator<WatchEvent<T>> {
    const { opts, url } = await this.#open('GET', path, {}, signal);
    const res = await this.#send(url, opts, undefined);
    if ((res.statusCode ?? 0) >= 300) {
      let text = '';
      for await (const chunk of res) text += String(chunk);
      let s: { reason?: string; message?: string } = {};
      try {
        s = JSON.parse(text) as typeof s;
      } catch {
        // not a Status
      }
      throw new ApiError(res.statusCode ?? 0, s.reason ?? 'Unknown', s.message ?? `watch ${path}: HTTP ${res.statusCode}`);
    }
    res.setEncoding('utf8');
    let buf = '';
    for await (const chunk of res) {
      buf += chunk as string;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line) yield JSON.parse(line) as WatchEvent<T>;
      }
    }
  }
}

function sameValue(a: unknown, b: unknown): boolean {
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  return a === b;
}

/** The REST path of a namespaced resource: `/apis/group/version/namespaces/ns/plural[/name][/sub]`. */
export interface ResourcePath {
  group: string;
  version: string;
  plural: string;
}

export function resourcePath(r: ResourcePath, namespace?: string, name?: string, sub?: string): string {
  const base = r.group === '' ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
  const ns = namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${base}${ns}/${r.plural}${name ? `/${encodeURIComponent(name)}` : ''}${sub ? `/${sub}` : ''}`;
}
