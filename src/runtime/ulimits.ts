import { InvalidInputError } from '../util/errors.js';

/**
 * A limit as `--ulimit` gives it: a number, or `'unlimited'` (podman's `-1`). The spec writes
 * unlimited as RLIM_INFINITY, which is beyond a JavaScript number's exact range; keeping it a
 * word here leaves run options plain JSON (the detached monitor's job file carries them).
 */
export type RlimitValue = number | 'unlimited';

/** One `--ulimit`: an entry of the spec's `process.rlimits`. */
export interface Rlimit {
  type: string;
  soft: RlimitValue;
  hard: RlimitValue;
}

/** RLIM_INFINITY, (rlim_t)-1: what the runtime's uint64 `soft`/`hard` carry for unlimited. */
export const RLIM_INFINITY: bigint = 2n ** 64n - 1n;

/** The value the spec carries for a limit: a number, or RLIM_INFINITY (a bigint, written exactly by `specJson`). */
export function rlimitSpecValue(value: RlimitValue): number | bigint {
  return value === 'unlimited' ? RLIM_INFINITY : value;
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

function limitValue(value: string, whole: string): RlimitValue {
  if (value === '-1' || value === 'unlimited') return 'unlimited';
  if (/^-\d+$/.test(value)) throw new InvalidInputError(`--ulimit ${whole}: "${value}" is negative; the only negative limit is -1 (unlimited)`);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidInputError(`--ulimit ${whole}: "${value}" is not a number`);
  return Number(value);
}

const exceeds = (soft: RlimitValue, hard: RlimitValue): boolean => hard !== 'unlimited' && (soft === 'unlimited' || soft > hard);

/** `--ulimit name=soft[:hard]` (podman's syntax; hard defaults to soft; `-1` or `unlimited` for no limit). */
export function parseUlimit(text: string): Rlimit {
  const m = /^([a-z]+)=([^:]+)(?::(.+))?$/.exec(text.trim());
  if (!m) throw new InvalidInputError(`--ulimit ${text}: expected NAME=SOFT[:HARD]`);
  const name = m[1]!;
  if (!ULIMIT_NAMES.includes(name)) throw new InvalidInputError(`--ulimit ${text}: unknown limit "${name}" (one of ${ULIMIT_NAMES.join(', ')})`);
  const soft = limitValue(m[2]!, text);
  const hard = m[3] === undefined ? soft : limitValue(m[3], text);
  if (exceeds(soft, hard)) throw new InvalidInputError(`--ulimit ${text}: the soft limit (${soft}) exceeds the hard limit (${hard})`);
  return { type: `RLIMIT_${name === 'as' ? 'AS' : name.toUpperCase()}`, soft, hard };
}

/** The defaults with each override replacing the entry of its type (later overrides win). */
export function mergeRlimits(defaults: readonly Rlimit[], overrides: readonly Rlimit[]): Rlimit[] {
  const byType = new Map<string, Rlimit>();
  for (const r of [...defaults, ...overrides]) byType.set(r.type, { type: r.type, hard: r.hard, soft: r.soft });
  return [...byType.values()];
}
