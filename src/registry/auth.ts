/**
 * The distribution spec's auth flow: a request answered 401 names a scheme in WWW-Authenticate.
 * Basic means "send user:password"; Bearer means "fetch a token from the realm for this scope and
 * send that" (docs.docker.com/registry/spec/auth/token).
 */

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a WWW-Authenticate header value, e.g.
 * `Bearer realm="https://auth.example/token",service="registry",scope="repository:a:pull"`.
 * Quoted values may contain commas; several challenges may be present.
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  const values = Array.isArray(header) ? header : header ? [header] : [];
  const out: Challenge[] = [];
  for (const value of values) {
    let i = 0;
    const s = value;
    let current: Challenge | undefined;
    while (i < s.length) {
      while (i < s.length && (s[i] === ' ' || s[i] === ',')) i++;
      const tokenStart = i;
      while (i < s.length && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(s[i]!)) i++;
      const token = s.slice(tokenStart, i);
      if (!token) {
        i++;
        continue;
      }
      while (i < s.length && s[i] === ' ') i++;
      if (s[i] === '=') {
        i++;
        while (i < s.length && s[i] === ' ') i++;
        let val = '';
        if (s[i] === '"') {
          i++;
          while (i < s.length && s[i] !== '"') {
            if (s[i] === '\\' && i + 1 < s.length) i++;
            val += s[i];
            i++;
          }
          i++;
        } else {
          const vs = i;
          while (i < s.length && s[i] !== ',') i++;
          val = s.slice(vs, i).trim();
        }
        if (current) current.params[token.toLowerCase()] = val;
      } else {
        current = { scheme: token.toLowerCase(), params: {} };
        out.push(current);
      }
    }
  }
  return out;
}

/** A token scope, e.g. `repository:library/busybox:pull,push`. */
export function repositoryScope(repository: string, actions: string[]): string {
  return `repository:${repository}:${actions.join(',')}`;
}

/** Merges scopes so one token covers them all (`repository:a:pull` + `repository:a:push` → `pull,push`). */
export function mergeScopes(scopes: string[]): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const scope of scopes) {
    const last = scope.lastIndexOf(':');
    if (last < 0) continue;
    const resource = scope.slice(0, last);
    const actions = byResource.get(resource) ?? new Set<string>();
    for (const a of scope.slice(last + 1).split(',')) if (a) actions.add(a);
    byResource.set(resource, actions);
  }
  return [...byResource.entries()].map(([r, a]) => `${r}:${[...a].sort().join(',')}`).sort();
}

export interface TokenResponse {
  token?: string;
  access_token?: string;
  expires_in?: number;
  issued_at?: string;
}

export interface CachedToken {
  token: string;
  /** Epoch ms after which the token is not used again. */
  expiresAt: number;
}

/** Tokens are reused until shortly before they expire; the spec's minimum lifetime is 60 s. */
export function tokenFromResponse(doc: TokenResponse, now = Date.now()): CachedToken | undefined {
  const token = doc.token ?? doc.access_token;
  if (!token) return undefined;
  const lifetime = Math.max(60, doc.expires_in ?? 60) * 1000;
  const issued = doc.issued_at ? Date.parse(doc.issued_at) : now;
  const start = Number.isNaN(issued) || issued > now ? now : issued;
  return { token, expiresAt: start + lifetime - 10_000 };
}
