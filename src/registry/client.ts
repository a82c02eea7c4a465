import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { createRequire } from 'node:module';
import type { Agent, Dispatcher } from 'undici';
import { DOCKER_HUB_API_HOST, DEFAULT_REGISTRY } from '../oci/reference.js';
import { rootLogger, type Logger } from '../util/log.js';
import { streamToBuffer } from '../util/streams.js';
import { StevedoreError, TooLargeError } from '../util/errors.js';
import { mergeScopes, parseChallenges, tokenFromResponse, type CachedToken, type Challenge, type TokenResponse } from './auth.js';
import type { Credentials } from './credentials.js';
import { connectOptions, tlsMaterialFor } from './certs.js';
import { BlobLocations } from './blob-locations.js';
import { AuthError, isRetryableStatus, parseErrorBody, RegistryError } from './errors.js';
import { classifyError, DEFAULT_RETRY, isRetryableNetworkError, parseRetryAfter, withRetry, type RetryPolicy, type RetryVerdict } from '../util/retry.js';

export type HttpMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

export interface RegistryClientOptions {
  /** Registry host[:port] as written in image references (`docker.io` is Docker Hub). */
  registry: string;
  /** Credentials, or a function that finds them lazily (from an auth file) on the first 401. */
  credentials?: Credentials | (() => Promise<Credentials | undefined>);
  /** Verify TLS and refuse plain HTTP. Default true, except loopback hosts, which may speak HTTP as in Docker. */
  tlsVerify?: boolean;
  /** containers-certs.d(5) directory (CA `*.crt`, client `*.cert`/`*.key`); default: `<certs.d>/<registry>` if one exists. */
  certDir?: string;
  /**
   * Whether auth errors suggest `stevedore login` (default true). Off where the process's own auth
   * files are never read (the controller, --no-creds): logging in would change nothing there.
   */
  loginHint?: boolean;
  /** certs.d roots searched when certDir is not given (default: ~/.config/containers, /etc/containers, /etc/docker). */
  certsDirs?: readonly string[];
  retry?: Partial<RetryPolicy>;
  /** Connections per origin; undici queues further requests. */
  maxConnections?: number;
  logger?: Logger;
  userAgent?: string;
}

export interface RegistryRequest {
  method: HttpMethod;
  /** A path under the registry root (`/v2/...`) or an absolute URL (upload locations, redirects). */
  path: string;
  /** Token scopes this request needs, e.g. `repository:app:pull,push`. */
  scopes: string[];
  headers?: Record<string, string>;
  /** Buffers are resent on retry; a stream body is sent once (callers retry the whole operation). */
  body?: Buffer | Readable;
  signal?: AbortSignal;
  /** Statuses that count as success. Others become RegistryError unless `allowStatus` includes them. */
  expect: number[];
  /** Statuses returned to the caller rather than thrown (e.g. 404 for an existence check). */
  allowStatus?: number[];
}

export interface RegistryResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Dispatcher.ResponseData['body'];
  url: string;
}

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/;

/*
 * undici's package entry loads all of undici (fetch, WebSocket, cookies, caches, mocks): ~110 ms of
 * start-up, a third of a `sync` that finds every tag unchanged. The client needs the Agent and the
 * request API only, so it loads those two modules (undici has no exports map; the version is pinned
 * in package-lock.json, and test/registry covers every call made through them).
 */
const undiciRequire = createRequire(import.meta.url);
const AgentClass = undiciRequire('undici/lib/dispatcher/agent.js') as typeof Agent;
const apiRequest = undiciRequire('undici/lib/api/api-request.js') as (this: Dispatcher, opts: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;

function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * An OCI distribution client for one registry host, on undici. It owns what every request needs:
 * the scheme (HTTPS, or HTTP for insecure/loopback hosts, learned by one ping), authentication
 * (anonymous, Basic, or Bearer tokens fetched per scope set and cached until expiry), retries with
 * exponential backoff and jitter on 408/429/5xx and broken connections honouring Retry-After, and a
 * per-host connection limit. Operations (blobs, manifests, tags, referrers) are thin functions on top.
 */
export class RegistryClient {
  readonly registry: string;
  /** Repositories of this registry known (through this client) to hold each blob, for cross-repository mounts. */
  readonly blobLocations = new BlobLocations();
  readonly #apiHost: string;
  readonly #insecure: boolean;
  readonly #agent: Agent;
  readonly #retry: RetryPolicy;
  readonly #log: Logger;
  readonly #userAgent: string;
  readonly #loginHint: boolean;
  #credentials: RegistryClientOptions['credentials'];
  #resolvedCredentials: Credentials | undefined | null = null;
  #base: Promise<string> | undefined;
  #challenge: Challenge | undefined;
  readonly #tokens = new Map<string, CachedToken>();
  readonly #tokenFetches = new Map<string, Promise<CachedToken>>();

  constructor(opts: RegistryClientOptions) {
    this.registry = opts.registry;
    this.#apiHost = opts.registry === DEFAULT_REGISTRY ? DOCKER_HUB_API_HOST : opts.registry;
    this.#insecure = opts.tlsVerify === false || (opts.tlsVerify === undefined && LOOPBACK.test(this.#apiHost));
    this.#retry = { ...DEFAULT_RETRY, ...(opts.retry ?? {}) };
    this.#log = (opts.logger ?? rootLogger).child({ registry: opts.registry });
    this.#credentials = opts.credentials;
    this.#userAgent = opts.userAgent ?? 'stevedore/0.1';
    this.#loginHint = opts.loginHint ?? true;
    this.#agent = new AgentClass({
      connections: opts.maxConnections ?? 16,
      connect: { rejectUnauthorized: !this.#insecure, ...connectOptions(tlsMaterialFor(opts.registry, opts.certDir, opts.certsDirs)) },
      keepAliveTimeout: 10_000,
      headersTimeout: 300_000,
      bodyTimeout: 300_000,
    });
  }

  /** The base URL (scheme://host), learned once by pinging `/v2/`. */
  baseUrl(signal?: AbortSignal): Promise<string> {
    const base = (this.#base ??= this.#ping(signal));
    // A failed ping is not cached: the callers that were waiting for it get its error, and the
    // next call pings again.
    return base.catch((err: unknown) => {
      if (this.#base === base) this.#base = undefined;
      throw err;
    });
  }

  /**
   * Starts the ping without waiting for it (a sync pings both registries before it reads the tag
   * list). Its outcome, a failure included, goes to the next baseUrl() call: an unreachable
   * registry is not pinged through its retries twice.
   */
  warmUp(signal?: AbortSignal): void {
    if (this.#base) return;
    const base = this.#ping(signal);
    base.catch(() => undefined); // reported to the next baseUrl() call
    this.#base = base;
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }

  #send(opts: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData> {
    return apiRequest.call(this.#agent, opts);
  }

  async #credentialsNow(): Promise<Credentials | undefined> {
    if (this.#resolvedCredentials === null) {
      const c = this.#credentials;
      this.#resolvedCredentials = typeof c === 'function' ? await c() : c;
    }
    return this.#resolvedCredentials;
  }

  /**
   * Tries HTTPS first; an insecure host (tls-verify=false, or loopback) that does not speak TLS
   * falls back to HTTP, as Docker and containers/image do. Loopback hosts try HTTPS first too: a
   * port-forward or tunnel to a TLS registry must not be spoken to in plain HTTP (a TLS server's
   * `400` to a plain request was taken for an answer). HTTPS wins whenever it answers; the HTTP
   * probe of an insecure host is sent at the same time, so that a plain-HTTP registry costs one
   * round trip, not a failed handshake followed by a second round trip (a sync pings two
   * registries before its first HEAD). The HTTP probe is dropped as soon as HTTPS has answered.
   */
  async #ping(signal?: AbortSignal): Promise<string> {
    const schemes = this.#insecure ? ['https', 'http'] : ['https'];
    const done = new AbortController();
    const probeSignal = signal ? AbortSignal.any([signal, done.signal]) : done.signal;
    const probes = schemes.map((scheme, i) =>
      this.#probe(scheme, i === schemes.length - 1, probeSignal).then(
        (answer) => ({ answer, err: undefined as unknown }),
        (err: unknown) => ({ answer: undefined, err }),
      ),
    );
    const tried: string[] = [];
    let lastErr: unknown;
    try {
      for (const [i, probe] of probes.entries()) {
        const { answer, err } = await probe;
        if (answer) {
          // Only the scheme that is used sets the challenge (both probes may have answered).
          this.#challenge = answer.challenge;
          return answer.base;
        }
        if (signal?.aborted) throw err;
        // Out of attempts on a 5xx/429: the host answers HTTP, just not well; that is its answer.
        if (err instanceof RetryableStatus) return `${schemes[i]}://${this.#apiHost}`;
        if ((err as { code?: string }).code === 'RETRY_AFTER_TOO_LONG') throw err;
        lastErr = err;
        tried.push(`${schemes[i]}: ${(err as Error).message}`);
      }
    } finally {
      done.abort();
    }
    const hint = this.#insecure ? '' : ' (for a plain-HTTP or self-signed registry use --tls-verify=false)';
    throw new StevedoreError('REGISTRY_UNREACHABLE', `cannot reach registry ${this.registry}: ${tried.join('; ') || 'no answer'}${hint}`, {
      cause: lastErr,
      retryable: true,
    });
  }

  /** One scheme's probe of `/v2/`: its base URL (and auth challenge) if the host answers HTTP on it. */
  #probe(scheme: string, last: boolean, signal: AbortSignal): Promise<{ base: string; challenge: Challenge | undefined }> {
    const base = `${scheme}://${this.#apiHost}`;
    return withRetry(
      async () => {
        const res = await this.#send({ origin: base, path: '/v2/', method: 'GET', headers: { 'user-agent': this.#userAgent }, signal });
        await res.body.dump();
        const challenge = res.statusCode === 401 ? parseChallenges(res.headers['www-authenticate'])[0] : undefined;
        if (isRetryableStatus(res.statusCode)) throw new RetryableStatus(res.statusCode, parseRetryAfter(res.headers['retry-after']));
        // Go's TLS servers answer a plain request with 400 "Client sent an HTTP request to an HTTPS server".
        if (scheme === 'http' && res.statusCode === 400)
          throw new StevedoreError('TLS_REQUIRED', `${this.registry} answered plain HTTP with 400: it speaks HTTPS`);
        // Some registries answer /v2/ with 404 yet serve the API; accept any HTTP answer.
        return { base, challenge };
      },
      this.#retry,
      // A refused connection or a TLS error means "not this scheme": the next one is tried at
      // once; broken connections are retried only on the last scheme (an HTTP server resets a
      // TLS hello, which must not cost the HTTPS probe its backoff).
      (err) => (err instanceof RetryableStatus ? err.verdict() : last && isRetryableNetworkError(err) && (err as { code?: string }).code !== 'ECONNREFUSED'),
      signal,
      { what: `GET ${base}/v2/` },
    );
  }

  async #authorization(scopes: string[], signal?: AbortSignal): Promise<string | undefined> {
    const ch = this.#challenge;
    if (!ch) return undefined;
    if (ch.scheme === 'basic') {
      const creds = await this.#credentialsNow();
      return creds ? `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}` : undefined;
    }
    if (ch.scheme === 'bearer') {
      const token = await this.#token(mergeScopes(scopes), signal);
      return `Bearer ${token.token}`;
    }
    return undefined;
  }

  /** One token per distinct scope set, fetched once even under concurrency, reused until near expiry. */
  async #token(scopes: string[], signal?: AbortSignal): Promise<CachedToken> {
    const key = scopes.join(' ');
    const cached = this.#tokens.get(key);
    if (cached && cached.expiresAt > Date.now()) return cached;
    let pending = this.#tokenFetches.get(key);
    if (!pending) {
      pending = this.#fetchToken(scopes, signal).finally(() => this.#tokenFetches.delete(key));
      this.#tokenFetches.set(key, pending);
    }
    const token = await pending;
    this.#tokens.set(key, token);
    return token;
  }

  async #fetchToken(scopes: string[], signal?: AbortSignal): Promise<CachedToken> {
    const realm = this.#challenge?.params.realm;
    if (!realm) throw new AuthError(`registry ${this.registry} asked for a bearer token but named no realm`);
    const url = new URL(realm);
    if (this.#challenge?.params.service) url.searchParams.set('service', this.#challenge.params.service);
    for (const s of scopes) url.searchParams.append('scope', s);
    const creds = await this.#credentialsNow();
    const headers: Record<string, string> = { 'user-agent': this.#userAgent };
    if (creds) headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    const who = creds ? `user "${creds.username}"` : 'anonymous access';
    return withRetry(
      async () => {
        let res: Dispatcher.ResponseData;
        try {
          res = await this.#send({ origin: url.origin, path: url.pathname + url.search, method: 'GET', headers, signal });
        } catch (err) {
          throw new AuthError(`cannot reach the token service ${url.origin} for ${this.registry}: ${(err as Error).message}`, {
            cause: err,
            retryable: isRetryableNetworkError(err),
          });
        }
        if (res.statusCode === 200) {
          const token = tokenFromResponse((await res.body.json()) as TokenResponse);
          if (!token) throw new AuthError(`token service ${url.origin} answered without a token`);
          this.#log.debug({ scopes, realm: url.origin }, 'token acquired');
          return token;
        }
        await res.body.dump();
        throw new AuthError(`authentication to ${this.registry} failed for ${who} (token service answered ${res.statusCode})`, {
          retryable: isRetryableStatus(res.statusCode),
          retryAfterMs: parseRetryAfter(res.headers['retry-after']),
        });
      },
      this.#retry,
      classifyError,
      signal,
      { what: `token for ${this.registry} from ${url.origin}` },
    );
  }

  /**
   * Sends one request with auth, redirects and retries. Returns the response for expected (and
   * allowed) statuses; throws RegistryError / AuthError with the registry's own error text otherwise.
   */
  async request(req: RegistryRequest): Promise<RegistryResponse> {
    const base = await this.baseUrl(req.signal);
    // A stream body is sent once: its caller retries the whole operation.
    const replayable = req.body === undefined || Buffer.isBuffer(req.body);
    const state = { url: /^https?:\/\//.test(req.path) ? req.path : base + req.path, authRetried: false, redirects: 0 };
    return withRetry(() => this.#attempt(req, base, replayable, state), replayable ? this.#retry : { ...this.#retry, attempts: 1 }, classifyError, req.signal, {
      what: `${req.method} ${state.url}`,
      onRetry: ({ delayMs, err }) => this.#log.info({ method: req.method, url: state.url, err: (err as Error).message, delay: delayMs }, 'retrying request'),
    });
  }

  /** One attempt of a request: auth challenges and redirects are followed here; retries are request()'s. */
  async #attempt(
    req: RegistryRequest,
    base: string,
    replayable: boolean,
    state: { url: string; authRetried: boolean; redirects: number },
  ): Promise<RegistryResponse> {
    for (;;) {
      const url = state.url;
      const target = new URL(url);
      const sameHost = target.origin === base;
      const headers: Record<string, string> = { 'user-agent': this.#userAgent, ...(req.headers ?? {}) };
      if (sameHost) {
        const auth = await this.#authorization(req.scopes, req.signal);
        if (auth) headers.authorization = auth;
      }
      let res: Dispatcher.ResponseData;
      try {
        res = await this.#send({
          origin: target.origin,
          path: target.pathname + target.search,
          method: req.method,
          headers,
          body: req.body,
          signal: req.signal,
          // undici closes the connection after every HEAD (for servers that wrongly send a body),
          // so each tag checked by a sync, and each blob checked by a copy, paid a new TCP (and
          // TLS) connection on both ends. Registries answer HEAD correctly: keep the connection.
          ...(req.method === 'HEAD' ? { reset: false } : {}),
        });
      } catch (err) {
        if (req.signal?.aborted) throw err;
        // undici rejects with the request body's own error when the body stream fails. Ours are
        // verifying streams: a DIGEST_MISMATCH / SIZE_MISMATCH from the source must reach the
        // caller as itself (non-retryable, naming the blob), not be rewrapped as a NETWORK error.
        if (err instanceof StevedoreError) throw err;
        throw new StevedoreError('NETWORK', `${req.method} ${url}: ${(err as Error).message}`, { cause: err, retryable: isRetryableNetworkError(err) });
      }
      const status = res.statusCode;
      if (status === 401 && sameHost && !state.authRetried && replayable) {
        await res.body.dump();
        const challenge = parseChallenges(res.headers['www-authenticate'])[0];
        if (challenge) {
          this.#challenge = challenge;
          this.#tokens.clear(); // a 401 with a token means it is stale or lacks scope
          state.authRetried = true;
          continue;
        }
      }
      if ([301, 302, 303, 307, 308].includes(status) && (req.method === 'GET' || req.method === 'HEAD')) {
        await res.body.dump();
        const location = header(res.headers, 'location');
        if (!location || ++state.redirects > 5) throw new RegistryError(`${req.method} ${url}: too many or empty redirects`, { status, url });
        state.url = new URL(location, url).toString();
        continue;
      }
      if (req.expect.includes(status) || req.allowStatus?.includes(status)) {
        return { status, headers: res.headers, body: res.body, url };
      }
      const text = req.method === 'HEAD' ? '' : await readCapped(res.body, 64 * 1024);
      const err = this.#errorFor(req, url, status, text);
      if (err instanceof RegistryError && err.retryable) err.retryAfterMs = parseRetryAfter(res.headers['retry-after']);
      throw err;
    }
  }

  #errorFor(req: RegistryRequest, url: string, status: number, text: string): StevedoreError {
    const details = parseErrorBody(text);
    const first = details[0];
    const what = first ? `${first.code}: ${first.message}` : text.trim().slice(0, 200) || `HTTP ${status}`;
    if (status === 401) {
      // Basic credentials were sent and refused: say so, rather than "authentication required",
      // which reads as if none had been given (a wrong password was indistinguishable from none).
      const creds = this.#resolvedCredentials;
      if (creds && this.#challenge?.scheme === 'basic') {
        return new AuthError(
          `${this.registry}: credentials for user "${creds.username}" were rejected (${what}); check them${this.#loginHint ? `, or log in again with "stevedore login ${this.registry}"` : ''}`,
        );
      }
      return new AuthError(
        `${this.registry}: authentication required (${what}); ${this.#loginHint ? `log in with "stevedore login ${this.registry}" or pass credentials` : 'give credentials for it'}`,
      );
    }
    if (status === 403) return new RegistryError(`${this.registry}: access denied: ${what}`, { status, url, details });
    return new RegistryError(`${req.method} ${url}: ${status} ${what}`, { status, url, details });
  }
}

/** A retryable answer to the scheme probe, carried to withRetry's classifier. */
class RetryableStatus extends Error {
  readonly status: number;
  readonly retryAfterMs: number | undefined;
  constructor(status: number, retryAfterMs: number | undefined) {
    super(`HTTP ${status}`);
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
  verdict(): RetryVerdict {
    return this.retryAfterMs !== undefined ? { afterMs: this.retryAfterMs } : true;
  }
}

async function readCapped(body: Readable, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of body) {
    const b = chunk as Buffer;
    if (n < limit) chunks.push(b.subarray(0, limit - n));
    n += b.length;
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads a whole response body with a hard cap, refusing one whose declared length is over it before reading. */
export async function readBodyCapped(body: Readable, limit: number, what: string, declared?: string): Promise<Buffer> {
  if (declared !== undefined && Number(declared) > limit) {
    body.destroy();
    throw new TooLargeError(what, limit, Number(declared));
  }
  return streamToBuffer(body, limit, what);
}
