import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DURATION_PATTERN } from '../../src/k8s/api/schema.js';
import { parseDuration, parseDurationNs } from '../../src/util/duration.js';
import { InvalidInputError } from '../../src/util/errors.js';

describe('util/duration (Go time.ParseDuration syntax)', () => {
  it.each([
    ['0', 0],
    ['5s', 5e9],
    ['30s', 30e9],
    ['1478s', 1478e9],
    ['-5s', -5e9],
    ['+5s', 5e9],
    ['-0', 0],
    ['5.0s', 5e9],
    ['5.6s', 5.6e9],
    ['5.s', 5e9],
    ['.5s', 0.5e9],
    ['1.004s', 1.004e9],
    ['100.00100s', 100.001e9],
    ['10ns', 10],
    ['11us', 11e3],
    ['12µs', 12e3],
    ['12μs', 12e3],
    ['13ms', 13e6],
    ['14s', 14e9],
    ['15m', 900e9],
    ['16h', 16 * 3600e9],
    ['3h30m', 12_600e9],
    ['10.5s4m', 250.5e9],
    ['-2m3.4s', -123.4e9],
    ['1h2m3s4ms5us6ns', 3_723_004_005_006],
    ['39h9m14.425s', 140_954_425_000_000],
  ])('%s is %d ns', (text, ns) => {
    expect(parseDurationNs(text)).toBe(ns);
  });

  it.each(['', '3', '-', 's', '.', '.s', '+.s', '1d', '5 minutes', '1h 30m', '30S', '1.2.3s'])('refuses %j with an InvalidInputError naming it', (text) => {
    expect(() => parseDurationNs(text)).toThrow(InvalidInputError);
    expect(() => parseDurationNs(text)).toThrow(`invalid duration "${text}"`);
  });

  it('gives milliseconds for timers and refuses negative ones', () => {
    expect(parseDuration('30m')).toBe(1_800_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('250us')).toBe(0.25);
    expect(() => parseDuration('-1s')).toThrow(/must not be negative/);
  });

  it('accepts every string the CRDs accept (DURATION_PATTERN) and sums its parts', () => {
    const units = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 } as const;
    const part = fc.tuple(fc.nat(999), fc.option(fc.nat(99), { nil: undefined }), fc.constantFrom(...(Object.keys(units) as (keyof typeof units)[])));
    fc.assert(
      fc.property(fc.array(part, { minLength: 1, maxLength: 4 }), (parts) => {
        const text = parts.map(([n, frac, u]) => `${n}${frac === undefined ? '' : `.${frac}`}${u}`).join('');
        expect(new RegExp(DURATION_PATTERN).test(text)).toBe(true);
        const expected = parts.reduce((sum, [n, frac, u]) => sum + Number(`${n}${frac === undefined ? '' : `.${frac}`}`) * units[u], 0);
        expect(parseDurationNs(text)).toBe(Math.round(expected));
      }),
    );
  });
});
