/**
 * Go's time.ParseDuration, because HEALTHCHECK flags use its syntax (`30s`, `1m30s`, `1.5h`,
 * `500ms`, `10us`). Result in nanoseconds, the unit of the image config's Healthcheck fields.
 */
const UNITS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  'µs': 1e3,
  'μs': 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

export function parseGoDuration(text: string): number {
  let s = text;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw new Error(`invalid duration "${text}"`);
  let total = 0;
  const part = /^(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;
  while (s !== '') {
    const m = part.exec(s);
    if (!m) throw new Error(`invalid duration "${text}"`);
    total += Number(m[1]) * UNITS[m[2]!]!;
    s = s.slice(m[0].length);
  }
  return sign * Math.round(total);
}

/** Nanoseconds back to Go's notation, for messages. */
export function formatDuration(ns: number): string {
  if (ns % 1e9 === 0) return `${ns / 1e9}s`;
  if (ns % 1e6 === 0) return `${ns / 1e6}ms`;
  return `${ns}ns`;
}
