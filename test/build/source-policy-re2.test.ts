/**
 * A source policy's REGEX and WILDCARD selectors run as RE2 (re2js, as tag filters and ignore
 * patterns): a pattern a backtracking engine takes exponential time over is linear here, a
 * construct RE2 lacks (lookahead, lookbehind, backreference) is refused when the policy is read,
 * naming the rule; the policy's JSON is handed on as read (`serialize`, what the controller gives
 * its build Pods). No registry or file: policies parsed from text.
 */
import { describe, expect, it } from 'vitest';
import { SourcePolicy } from '../../src/build/source-policy.js';

const parse = (rules: unknown[]) => SourcePolicy.parse(JSON.stringify({ rules }), 'policy.json');
const deny = (identifier: string, matchType = 'REGEX') => ({ action: 'DENY', selector: { identifier, matchType } });

describe('source policy selectors as RE2', () => {
  it('a backtracking-prone REGEX runs in linear time over a long identifier', () => {
    // `(a+)+b` against a run of a's with no b: exponential for a backtracking engine (V8's RegExp
    // does not finish this in a lifetime), one pass for RE2.
    const p = parse([deny('docker-image://(a+)+b'), deny('docker-image://(a|aa)*c')]);
    const long = `docker-image://${'a'.repeat(5_000)}!`;
    const t0 = performance.now();
    expect(p.evaluate(long)).toBe(long);
    // A loose bound (tens of ms alone; the suite runs on a loaded 2-core machine): backtracking
    // would not end at all.
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(() => p.evaluate(`docker-image://${'a'.repeat(5_000)}b`)).toThrow(/is denied by policy\.json \(rule DENY docker-image:\/\/\(a\+\)\+b\)/);
  }, 30_000);

  it.each([
    ['a lookahead', 'docker-image://(?!registry\\.internal/).*', /invalid or unsupported Perl syntax: `\(\?!`.*\(RE2 has no lookahead or lookbehind\)/],
    ['a lookbehind', 'docker-image://.*(?<!:latest)', /\(RE2 has no lookahead or lookbehind\)/],
    ['a backreference', 'docker-image://(a)\\1', /invalid escape sequence: `\\1`/],
    ['an unclosed group', 'docker-image://(', /missing closing \)/],
  ])('%s is refused, naming the rule and its pattern', (_, pattern, why) => {
    const run = () => parse([deny('docker-image://ok'), deny(pattern)]);
    expect(run).toThrow(`policy.json: rules[1]: selector.identifier ${JSON.stringify(pattern)} is not a valid RE2 regular expression: `);
    expect(run).toThrow(why);
  });

  it('REGEX matches the whole identifier, its groups fill ${1}…; an unmatched group is empty', () => {
    const p = parse([
      {
        action: 'CONVERT',
        selector: { identifier: 'docker-image://docker\\.io/library/([a-z]+)(-slim)?:(\\d+)|docker-image://other/(x)', matchType: 'REGEX' },
        updates: { identifier: 'docker-image://mirror.test/${1}${2}:${3}-pinned' },
      },
      deny('docker-image://mirror\\.test/.*-slim:.*'),
    ]);
    expect(p.evaluate('docker-image://docker.io/library/node:22')).toBe('docker-image://mirror.test/node:22-pinned');
    expect(() => p.evaluate('docker-image://docker.io/library/node-slim:22')).toThrow(/mirror\.test\/node-slim:22-pinned \(from .*node-slim:22\) is denied/);
    // Not the whole identifier: no match (the pattern is anchored at both ends, alternation included).
    expect(p.evaluate('docker-image://docker.io/library/node:22.1')).toBe('docker-image://docker.io/library/node:22.1');
    expect(p.evaluate('docker-image://other/x')).toBe('docker-image://mirror.test/:-pinned');
  });

  it('WILDCARD treats everything but * and ? literally', () => {
    const p = parse([
      {
        action: 'CONVERT',
        selector: { identifier: 'docker-image://reg.internal/(team)/*:v?', matchType: 'WILDCARD' },
        updates: { identifier: 'docker-image://reg.internal/pinned/${1}:${2}' },
      },
    ]);
    expect(p.evaluate('docker-image://reg.internal/(team)/app:v1')).toBe('docker-image://reg.internal/pinned/app:1');
    // `.` and `(` are literal: regInternal, team without parentheses and a two-character version do not match.
    expect(p.evaluate('docker-image://regXinternal/(team)/app:v1')).toBe('docker-image://regXinternal/(team)/app:v1');
    expect(p.evaluate('docker-image://reg.internal/team/app:v1')).toBe('docker-image://reg.internal/team/app:v1');
    expect(p.evaluate('docker-image://reg.internal/(team)/app:v12')).toBe('docker-image://reg.internal/(team)/app:v12');
  });

  it('serialize gives the document as read, compact, and it parses back to the same policy', () => {
    const doc = { rules: [{ action: 'deny', selector: { identifier: 'docker-image://x/*', matchType: 'wildcard', constraints: [] } }] };
    const p = SourcePolicy.parse(JSON.stringify(doc, null, 2), '/etc/policy.json');
    expect(p.serialize()).toBe(JSON.stringify(doc));
    const again = SourcePolicy.parse(p.serialize(), 'STEVEDORE_SOURCE_POLICY');
    expect(() => again.evaluate('docker-image://x/y')).toThrow(/denied by STEVEDORE_SOURCE_POLICY/);
  });
});
