/**
 * The protocol details the client leans on, without a registry: WWW-Authenticate parsing, token
 * scope merging and lifetime, Retry-After and backoff, Link pagination headers, referrers tags.
 */
import { describe, expect, it } from 'vitest';
import { mergeScopes, parseChallenges, repositoryScope, tokenFromResponse } from '../../src/registry/auth.js';
import { isRetryableStatus } from '../../src/registry/errors.js';
import { referrersTag } from '../../src/registry/referrers.js';
import { backoffDelay, DEFAULT_RETRY, parseRetryAfter, withRetry } from '../../src/util/retry.js';
import { StevedoreError } from '../../src/util/errors.js';
import { nextLink } from '../../src/registry/tags.js';

describe('WWW-Authenticate', () => {
  it('parses a bearer challenge whose quoted scope contains commas', () => {
    const [c] = parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"');
    expect(c).toEqual({ scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' } });
  });

  it('parses several challenges in one header and across headers', () => {
    const cs = parseChallenges(['Basic realm="x", Bearer realm="https://t/token",error="insufficient_scope"', 'Negotiate']);
    expect(cs.map((c) => c.scheme)).toEqual(['basic', 'bearer', 'negotiate']);
    expect(cs[1]!.params).toEqual({ realm: 'https://t/token', error: 'insufficient_scope' });
    expect(parseChallenges(undefined)).toEqual([]);
  });

  it('handles escapes in quoted values and unquoted values', () => {
    const [c] = parseChallenges('Bearer realm="a\\"b", service=reg');
    expect(c!.params).toEqual({ realm: 'a"b', service: 'reg' });
  });
});

describe('token scopes and lifetime', () => {
  it('merges actions per resource, sorted, so equal needs share one cached token', () => {
    expect(mergeScopes([repositoryScope('a', ['push']), repositoryScope('a', ['pull']), repositoryScope('b', ['pull'])])).toEqual([
      'repository:a:pull,push',
      'repository:b:pull',
    ]);
    expect(mergeScopes(['repository:a:pull,push'])).toEqual(mergeScopes(['repository:a:push', 'repository:a:pull']));
  });

  it('keeps tokens until 10 s before expiry, at least the spec minimum of 60 s', () => {
    const now = 1_000_000;
    expect(tokenFromResponse({ token: 't', expires_in: 300 }, now)).toEqual({ token: 't', expiresAt: now + 290_000 });
    expect(tokenFromResponse({ access_token: 'a', expires_in: 5 }, now)).toEqual({ token: 'a', expiresAt: now + 50_000 });
    expect(tokenFromResponse({}, now)).toBeUndefined();
    // issued_at in the future (clock skew) counts from now.
    expect(tokenFromResponse({ token: 't', expires_in: 60, issued_at: new Date(now + 3_600_000).toISOString() }, now)!.expiresAt).toBe(now + 50_000);
  });
});

describe('retries', () => {
  it('parses Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('1', now)).toBe(1000);
    expect(parseRetryAfter(' 30 ', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it('backs off exponentially with jitter, or by a fixed delay (--retry-delay)', () => {
    const policy = { baseDelayMs: 100, maxDelayMs: 1000 };
    for (let attempt = 0; attempt < 6; attempt++) {
      const cap = Math.min(1000, 100 * 2 ** attempt);
      const d = backoffDelay(policy, attempt);
      expect(d).toBeGreaterThanOrEqual(cap / 2);
      expect(d).toBeLessThanOrEqual(cap);
      expect(backoffDelay({ ...policy, fixedDelayMs: 7 }, attempt)).toBe(7);
    }
  });

  it('withRetry waits out a Retry-After, and fails at once, saying so, when it is over the cap (never cut short)', async () => {
    const busy = (afterMs: number) => Object.assign(new StevedoreError('TOO_MANY_REQUESTS', 'busy', { retryable: true }), { retryAfterMs: afterMs });
    let calls = 0;
    const started = Date.now();
    expect(await withRetry(async () => (++calls === 1 ? Promise.reject(busy(300)) : 'ok'), DEFAULT_RETRY)).toBe('ok');
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    calls = 0;
    const err = await withRetry(
      async () => {
        calls++;
        throw busy(10 * DEFAULT_RETRY.maxRetryAfterMs);
      },
      DEFAULT_RETRY,
      undefined,
      undefined,
      { what: 'GET /v2/x' },
    ).catch((e: unknown) => e);
    expect(calls).toBe(1);
    expect((err as StevedoreError).code).toBe('RETRY_AFTER_TOO_LONG');
    expect((err as Error).message).toBe(
      'GET /v2/x: the server asked to retry after 1200 s (Retry-After), more than the 120 s this client waits; try again later',
    );
  });

  it('withRetry stops on a non-retryable error and after the attempts', async () => {
    let calls = 0;
    await expect(
      withRetry(async () => {
        calls++;
        throw new StevedoreError('X', 'no');
      }, DEFAULT_RETRY),
    ).rejects.toThrow('no');
    expect(calls).toBe(1);
    calls = 0;
    const policy = { ...DEFAULT_RETRY, attempts: 3, fixedDelayMs: 1 };
    await expect(
      withRetry(async () => {
        calls++;
        throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
      }, policy),
    ).rejects.toThrow('reset');
    expect(calls).toBe(3);
  });

  it('retries 408, 429 and 5xx except 501 and 505', () => {
    expect([408, 429, 500, 502, 503, 504].every(isRetryableStatus)).toBe(true);
    expect([400, 401, 403, 404, 501, 505].some(isRetryableStatus)).toBe(false);
  });
});

describe('Link and referrers tags', () => {
  it('finds rel="next" among several links', () => {
    expect(nextLink('</v2/a/tags/list?last=b&n=2>; rel="next"')).toBe('/v2/a/tags/list?last=b&n=2');
    expect(nextLink(['</p>; rel="prev"', '<https://r.example/v2/a/tags/list?last=c>; rel=next'])).toBe('https://r.example/v2/a/tags/list?last=c');
    expect(nextLink('</p>; rel="prev"')).toBeUndefined();
    expect(nextLink(undefined)).toBeUndefined();
  });

  it('names the fallback tag sha256-<hex>', () => {
    expect(referrersTag(`sha256:${'ab'.repeat(32)}`)).toBe(`sha256-${'ab'.repeat(32)}`);
  });
});
