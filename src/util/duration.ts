import { InvalidInputError } from './errors.js';

/**
 * Go's `time.Duration` syntax (`time.ParseDuration`): one or more decimal numbers, each with an
 * optional fraction and a unit (`ns`, `us`/`µs`/`μs`, `ms`, `s`, `m`, `h`), an optional sign, and a
 * bare `0`: `90s`, `1h30m`, `1.5h`, `500ms`. The one parser for API fields written this way (an
 * ImageMirror's interval, an ImageBuild's or ContainerRun's timeout: DURATION_PATTERN), the agent's
 * flags and Containerfile HEALTHCHECK flags.
 */
const NS_PER_UNIT: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  µs: 1e3, // U+00B5 micro sign
  μs: 1e3, // U+03BC Greek mu
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

const PART = /^(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;

function invalid(text: string): InvalidInputError {
  return new InvalidInputError(`invalid duration "${text}": use Go syntax such as 30s, 1m30s or 500ms`);
}

/** A Go duration in nanoseconds (rounded to a whole number; may be negative). */
export function parseDurationNs(text: string): number {
  let s = text;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s.startsWith('-')) sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw invalid(text);
  let total = 0;
  while (s !== '') {
    const m = PART.exec(s);
    if (!m) throw invalid(text);
    total += Number(m[1]) * NS_PER_UNIT[m[2]!]!;
    s = s.slice(m[0].length);
  }
  return sign * Math.round(total);
}

/**
 * A Go duration in milliseconds, for intervals, timeouts and timers: never negative (a negative
 * interval or timeout has no meaning), fractions of a millisecond kept.
 */
export function parseDuration(text: string): number {
  const ns = parseDurationNs(text);
  if (ns < 0) throw new InvalidInputError(`invalid duration "${text}": must not be negative`);
  return ns / 1e6;
}
