import { InvalidInputError } from '../util/errors.js';

/** One entry of the spec's `process.rlimits`. */
export interface Rlimit {
  type: string;
  soft: number;
  hard: number;
}

/** The names `--ulimit` accepts (Docker's and podman's list), mapped to RLIMIT_*. */
const ULIMIT_NAMES: readonly string[] = [
  'core',
  'cpu',
  'data',
  'fsize',
  'locks',
  'memlock',
  'msgqueue',
  'nice',
  'nofile',
  'nproc',
  'rss',
  'rtprio',
  'rttime',
  'sigpending',
  'stack',
  'as',
];

function limitValue(value: string, whole: string): number {
  // RLIM_INFINITY is 2^64-1, which a JSON number written by JavaScript cannot carry exactly.
  if (value === '-1' || value === 'unlimited') throw new InvalidInputError(`--ulimit ${whole}: unlimited (-1) is not supported; give a number`);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidInputError(`--ulimit ${whole}: "${value}" is not a number`);
  return Number(value);
}

/** `--ulimit name=soft[:hard]` (podman's syntax; hard defaults to soft). */
export function parseUlimit(text: string): Rlimit {
  const m = /^([a-z]+)=([^:]+)(?::(.+))?$/.exec(text.trim());
  if (!m) throw new InvalidInputError(`--ulimit ${text}: expected NAME=SOFT[:HARD]`);
  const name = m[1]!;
  if (!ULIMIT_NAMES.includes(name)) throw new InvalidInputError(`--ulimit ${text}: unknown limit "${name}" (one of ${ULIMIT_NAMES.join(', ')})`);
  const soft = limitValue(m[2]!, text);
  const hard = m[3] === undefined ? soft : limitValue(m[3], text);
  if (soft > hard) throw new InvalidInputError(`--ulimit ${text}: the soft limit exceeds the hard limit`);
  return { type: `RLIMIT_${name === 'as' ? 'AS' : name.toUpperCase()}`, soft, hard };
}

/** The defaults with each override replacing the entry of its type (later overrides win). */
export function mergeRlimits(defaults: readonly Rlimit[], overrides: readonly Rlimit[]): Rlimit[] {
  const byType = new Map<string, Rlimit>();
  for (const r of [...defaults, ...overrides]) byType.set(r.type, { type: r.type, hard: r.hard, soft: r.soft });
  return [...byType.values()];
}
