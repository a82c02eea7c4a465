/**
 * A minimal Docker-distribution token server ("auth.token" realm) for tests.
 *
 * Implements the parts of https://distribution.github.io/distribution/spec/auth/token/ that
 * clients exercise: `GET realm?service=..&scope=..` with optional HTTP Basic credentials, and the
 * OAuth2 `POST` form (grant_type=password / refresh_token). Tokens are ES256 JWTs whose header
 * carries `x5c` (the self-signed certificate that is also the registry's `rootcertbundle`) and the
 * libtrust `kid` of the same key, so distribution 2.8 accepts them either way.
 *
 * Policy: valid users get exactly the actions they ask for (pull, push, delete, *); anonymous
 * callers get a token with an empty access list, which the registry answers with 401
 * insufficient_scope. Wrong credentials get 401 from the issuer itself. `grant` overrides this.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createHash, createPrivateKey, randomBytes, randomUUID, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { LOOPBACK } from './net.js';
import { runChecked } from './procs.js';

/** One requested or granted resource scope, as in the JWT `access` claim. */
export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenRequestLogEntry {
  method: 'GET' | 'POST';
  /** The authenticated user, `undefined` for anonymous requests, `null` for rejected credentials. */
  user: string | undefined | null;
  service: string | undefined;
  /** Raw scope strings as sent (`repository:foo/bar:pull,push`). */
  scopes: string[];
  /** What the issued token grants; empty for anonymous and rejected requests. */
  granted: AccessEntry[];
  status: number;
  grantType?: string;
}

/** Decides what a token grants. `user` is undefined for anonymous requests. */
export type GrantPolicy = (user: string | undefined, requested: AccessEntry) => string[];

export interface TokenIssuerOptions {
  /** Directory for the key and certificate (created by the caller, removed by the caller). */
  dir: string;
  /** Must equal the registry's `auth.token.service`; the token's `aud`. */
  service: string;
  /** Must equal the registry's `auth.token.issuer`; the token's `iss`. */
  issuer: string;
  /** username → password. */
  users: Record<string, string>;
  /** Token lifetime in seconds (`expires_in`); default 300. */
  ttlSeconds?: number;
  grant?: GrantPolicy;
}

export interface MintOptions {
  ttlSeconds?: number;
  aud?: string;
  iss?: string;
  /** Pretend "now" is this Unix time (for expired or not-yet-valid tokens). */
  nowSeconds?: number;
  /**
   * How the JWT header names the signing key. distribution 2.8 checks `x5c` first (chain verified
   * against rootcertbundle), otherwise looks `kid` up among the rootcertbundle's keys. Default 'both'.
   */
  keyRef?: 'x5c' | 'kid' | 'both';
}

export interface TokenIssuer {
  /** Base URL of the issuer, `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** The realm to put into the registry config: `${url}/token`. */
  readonly realm: string;
  /** PEM certificate to use as the registry's `rootcertbundle`. */
  readonly certFile: string;
  /** libtrust key ID of the signing key (what distribution calls `kid`). */
  readonly keyId: string;
  /** Number of token requests served (any outcome). */
  requests(): number;
  log(): TokenRequestLogEntry[];
  /** Mints a token directly, e.g. to test expired or foreign tokens. */
  mint(user: string | undefined, access: AccessEntry[], opts?: MintOptions): string;
  stop(): Promise<void>;
}

const KNOWN_ACTIONS = new Set(['pull', 'push', 'delete', '*']);

const defaultGrant: GrantPolicy = (user, requested) => (user === undefined ? [] : requested.actions.filter((a) => KNOWN_ACTIONS.has(a)));

export async function startTokenIssuer(opts: TokenIssuerOptions): Promise<TokenIssuer> {
  const keyFile = join(opts.dir, 'token-key.pem');
  const certFile = join(opts.dir, 'token-cert.pem');
  // The openssl CLI makes a proper self-signed CA certificate (basicConstraints CA:TRUE), which
  // Go's x509 verification needs when the same cert is both the x5c leaf and the trusted root.
  await runChecked('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '2',
    '-subj',
    '/CN=stevedore-test-token-issuer',
  ]);
  const privateKey = createPrivateKey(await readFile(keyFile));
  const cert = new X509Certificate(await readFile(certFile));
  const x5c = [cert.raw.toString('base64')];
  const keyId = libtrustKeyId(cert.publicKey);
  const ttl = opts.ttlSeconds ?? 300;
  const grant = opts.grant ?? defaultGrant;
  const refreshTokens = new Map<string, string>();
  const entries: TokenRequestLogEntry[] = [];

  const mint: TokenIssuer['mint'] = (user, access, m = {}) => {
    const now = m.nowSeconds ?? Math.floor(Date.now() / 1000);
    const keyRef = m.keyRef ?? 'both';
    const header = {
      typ: 'JWT',
      alg: 'ES256',
      ...(keyRef === 'x5c' ? {} : { kid: keyId }),
      ...(keyRef === 'kid' ? {} : { x5c }),
    };
    const claims = {
      iss: m.iss ?? opts.issuer,
      sub: user ?? '',
      aud: m.aud ?? opts.service,
      exp: now + (m.ttlSeconds ?? ttl),
      // nbf a little in the past: the registry and we share a clock, but not a second boundary.
      nbf: now - 5,
      iat: now,
      jti: randomUUID(),
      access,
    };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    // JWS ES256 wants the raw r||s signature, not DER.
    const sig = sign('sha256', Buffer.from(signingInput), { key: privateKey, dsaEncoding: 'ieee-p1363' });
    return `${signingInput}.${b64url(sig)}`;
  };

  const grantAll = (user: string | undefined, scopes: string[]): AccessEntry[] => {
    const out: AccessEntry[] = [];
    for (const s of scopes) {
      const req = parseScope(s);
      if (req === undefined) continue;
      const actions = grant(user, req);
      if (actions.length > 0) out.push({ type: req.type, name: req.name, actions });
    }
    return out;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://issuer');
    if (url.pathname !== '/token') return sendJson(res, 404, { errors: [{ code: 'NOT_FOUND' }] });

    if (req.method === 'GET') {
      const scopes = url.searchParams.getAll('scope').flatMap(splitScopes);
      const service = url.searchParams.get('service') ?? undefined;
      const basic = parseBasic(req.headers.authorization);
      let user: string | undefined;
      if (basic !== undefined) {
        if (opts.users[basic.user] !== basic.pass) {
          entries.push({ method: 'GET', user: null, service, scopes, granted: [], status: 401 });
          return sendJson(
            res,
            401,
            { errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] },
            {
              'WWW-Authenticate': 'Basic realm="stevedore-test-token-issuer"',
            },
          );
        }
        user = basic.user;
      }
      const granted = grantAll(user, scopes);
      const token = mint(user, granted, { aud: service });
      entries.push({ method: 'GET', user, service, scopes, granted, status: 200 });
      // Both names: old docker clients read `token`, OAuth-style clients read `access_token`.
      return sendJson(res, 200, { token, access_token: token, expires_in: ttl, issued_at: new Date().toISOString() });
    }

    if (req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req, 64 * 1024));
      const grantType = form.get('grant_type') ?? '';
      const scopes = splitScopes(form.get('scope') ?? '');
      const service = form.get('service') ?? undefined;
      let user: string | undefined;
      if (grantType === 'password') {
        const u = form.get('username') ?? '';
        if (opts.users[u] === undefined || opts.users[u] !== form.get('password')) user = undefined;
        else user = u;
      } else if (grantType === 'refresh_token') {
        user = refreshTokens.get(form.get('refresh_token') ?? '');
      } else {
        entries.push({ method: 'POST', user: null, service, scopes, granted: [], status: 400, grantType });
        return sendJson(res, 400, { error: 'unsupported_grant_type' });
      }
      if (user === undefined) {
        entries.push({ method: 'POST', user: null, service, scopes, granted: [], status: 401, grantType });
        return sendJson(res, 401, { error: 'invalid_grant' });
      }
      const granted = grantAll(user, scopes);
      const token = mint(user, granted, { aud: service });
      const body: Record<string, unknown> = {
        access_token: token,
        expires_in: ttl,
        issued_at: new Date().toISOString(),
        scope: scopes.join(' '),
      };
      if (form.get('access_type') === 'offline' || grantType === 'refresh_token') {
        const rt = randomBytes(24).toString('hex');
        refreshTokens.set(rt, user);
        body.refresh_token = rt;
      }
      entries.push({ method: 'POST', user, service, scopes, granted, status: 200, grantType });
      return sendJson(res, 200, body);
    }

    return sendJson(res, 405, { errors: [{ code: 'UNSUPPORTED' }] });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: String(e) });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${LOOPBACK}:${port}`;

  return {
    url,
    realm: `${url}/token`,
    certFile,
    keyId,
    requests: () => entries.length,
    log: () => entries.slice(),
    mint,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The key ID libtrust (and so distribution 2.x) derives from a public key: SHA-256 of the DER
 * SubjectPublicKeyInfo, first 240 bits, base32 without padding, in 12 colon-separated groups of 4.
 */
export function libtrustKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const b32 = base32(createHash('sha256').update(der).digest().subarray(0, 30));
  return b32.match(/.{4}/g)!.join(':');
}

/** `repository:foo/bar:pull,push` → {type, name, actions}; names may contain ':' (registry:catalog:*). */
export function parseScope(scope: string): AccessEntry | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(',')
      .filter((a) => a !== ''),
  };
}

function splitScopes(s: string): string[] {
  return s.split(' ').filter((x) => x !== '');
}

function parseBasic(header: string | undefined): { user: string; pass: string } | undefined {
  if (header === undefined || !/^basic /i.test(header)) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return { user: decoded, pass: '' };
  return { user: decoded.slice(0, colon), pass: decoded.slice(colon + 1) };
}

function b64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

function base32(buf: Buffer): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of buf) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    // Keep only the bits not yet emitted, so `value` never overflows 32 bits.
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > limit) req.destroy(new Error('token request body too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': String(data.length), ...headers });
  res.end(data);
}
