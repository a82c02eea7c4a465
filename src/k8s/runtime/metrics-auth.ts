/**
 * Authentication and authorization of /metrics scrapes as kube-rbac-proxy and controller-runtime's
 * filters.WithAuthenticationAndAuthorization do it: the caller's bearer token goes to a TokenReview,
 * the user it names to a SubjectAccessReview for `get` on the non-resource URL /metrics. A scraper
 * is let in when the API server says its identity may `get /metrics` (the chart's
 * <release>-metrics-reader ClusterRole grants exactly that). Answers are cached for a short while
 * by a hash of the token, so a Prometheus scraping every few seconds costs two API calls a minute.
 */
import { createHash } from 'node:crypto';
import type { KubeClient } from './client.js';

export type MetricsVerdict = 'allowed' | 'unauthenticated' | 'forbidden';

interface TokenReview {
  status?: { authenticated?: boolean; user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> } };
}
interface SubjectAccessReview {
  status?: { allowed?: boolean };
}

export interface MetricsAuthOptions {
  /** How long a verdict is reused for the same token (default 60 s; refusals 10 s). */
  ttlMs?: number;
  /** Non-resource path the SubjectAccessReview asks about (default /metrics). */
  path?: string;
}

export class MetricsAuthorizer {
  readonly #client: KubeClient;
  readonly #ttlMs: number;
  readonly #path: string;
  readonly #cache = new Map<string, { verdict: MetricsVerdict; until: number }>();

  constructor(client: KubeClient, o: MetricsAuthOptions = {}) {
    this.#client = client;
    this.#ttlMs = o.ttlMs ?? 60_000;
    this.#path = o.path ?? '/metrics';
  }

  /** The verdict for an Authorization header value (`Bearer <token>`). */
  async check(authorization: string | undefined): Promise<MetricsVerdict> {
    const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (!m) return 'unauthenticated';
    const token = m[1]!;
    const key = createHash('sha256').update(token).digest('hex');
    const now = Date.now();
    const hit = this.#cache.get(key);
    if (hit && hit.until > now) return hit.verdict;
    const verdict = await this.#review(token);
    if (this.#cache.size > 1024) this.#cache.clear();
    this.#cache.set(key, { verdict, until: now + (verdict === 'allowed' ? this.#ttlMs : Math.min(this.#ttlMs, 10_000)) });
    return verdict;
  }

  async #review(token: string): Promise<MetricsVerdict> {
    const tr = await this.#client.create<TokenReview>('/apis/authentication.k8s.io/v1/tokenreviews', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token },
    });
    const user = tr.status?.user;
    if (!tr.status?.authenticated || !user?.username) return 'unauthenticated';
    const sar = await this.#client.create<SubjectAccessReview>('/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: {
        user: user.username,
        uid: user.uid,
        groups: user.groups,
        extra: user.extra,
        nonResourceAttributes: { path: this.#path, verb: 'get' },
      },
    });
    return sar.status?.allowed ? 'allowed' : 'forbidden';
  }
}
