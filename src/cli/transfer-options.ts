/**
 * Flags that copy and sync share with skopeo's: retries (--retry-times, --retry-delay) and each
 * side's credentials, TLS and certificates (--src-*, --dest-*). Parsed once here into the engine's
 * options.
 */
import type { Command } from 'commander';
import { parseDurationNs } from '../util/duration.js';
import { InvalidInputError } from '../util/errors.js';
import type { RetryPolicy } from '../util/retry.js';
import type { TransportContext } from '../transports/types.js';

export interface RetryFlags {
  retryTimes?: string;
  retryDelay?: string;
}

export function addRetryOptions(cmd: Command): Command {
  return cmd
    .option('--retry-times <n>', 'retries of a failed request or blob transfer (attempts = n + 1; default: 4 for requests, 2 for blobs)')
    .option('--retry-delay <duration>', 'fixed delay between retries, e.g. 2s (default: exponential backoff with jitter; a Retry-After is honoured)');
}

/** The engine's retry policy from the flags; undefined when neither is given (the engine's defaults). */
export function retryPolicy(o: RetryFlags): Partial<RetryPolicy> | undefined {
  const out: Partial<RetryPolicy> = {};
  if (o.retryTimes !== undefined) {
    const n = Number(o.retryTimes);
    if (!Number.isInteger(n) || n < 0) throw new InvalidInputError(`--retry-times: expected a whole number >= 0, got "${o.retryTimes}"`);
    out.attempts = n + 1;
  }
  if (o.retryDelay !== undefined) {
    let ns: number;
    try {
      ns = parseDurationNs(o.retryDelay);
    } catch {
      throw new InvalidInputError(`--retry-delay: "${o.retryDelay}" is not a duration (e.g. 500ms, 2s, 1m)`);
    }
    if (ns < 0) throw new InvalidInputError(`--retry-delay: "${o.retryDelay}" is negative`);
    out.fixedDelayMs = Math.round(ns / 1e6);
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** One side's flags, as skopeo names them (`--src-*`, `--dest-*`). */
export interface SideFlags {
  creds?: string;
  username?: string;
  password?: string;
  noCreds?: boolean;
  authfile?: string;
  tlsVerify?: boolean;
  certDir?: string;
}

type Side = 'src' | 'dest';
const cap = (s: string) => s[0]!.toUpperCase() + s.slice(1);

/** Adds `--<side>-creds/-username/-password/-no-creds/-authfile/-tls-verify/-cert-dir`. */
export function addSideOptions(cmd: Command, side: Side, parseBool: (v: string) => boolean): Command {
  const who = side === 'src' ? 'source' : 'destination';
  return cmd
    .option(`--${side}-creds <user:password>`, `credentials for the ${who} registry`)
    .option(`--${side}-username <user>`, `user name for the ${who} registry (with --${side}-password)`)
    .option(`--${side}-password <password>`, `password for the ${who} registry (with --${side}-username)`)
    .option(`--${side}-no-creds`, `access the ${who} registry without credentials (no auth file either)`)
    .option(`--${side}-authfile <path>`, `auth file for the ${who}`)
    .option(
      `--${side}-tls-verify [bool]`,
      `require HTTPS and verified certificates for the ${who} (alone: true; skopeo's --${side}-tls-verify=false works)`,
      parseBool,
    )
    .option(`--${side}-cert-dir <dir>`, `certificates for the ${who} registry: CA *.crt, client *.cert/*.key (containers-certs.d)`);
}

/** One side's flags out of commander's camel-cased options object. */
export function sideFlags(flags: object, side: Side): SideFlags {
  const o = flags as Record<string, unknown>;
  const get = (k: string) => o[`${side}${cap(k)}`];
  return {
    creds: get('creds') as string | undefined,
    username: get('username') as string | undefined,
    password: get('password') as string | undefined,
    noCreds: get('noCreds') as boolean | undefined,
    authfile: (get('authfile') ?? o.authfile) as string | undefined,
    tlsVerify: (get('tlsVerify') ?? o.tlsVerify) as boolean | undefined,
    certDir: (get('certDir') ?? o.certDir) as string | undefined,
  };
}

/** The TransportContext of one side; conflicting flags are refused naming both. */
export function sideContext(f: SideFlags, side: Side, retry?: Partial<RetryPolicy>): TransportContext {
  const ctx: TransportContext = {};
  const given = [
    f.creds && `--${side}-creds`,
    (f.username ?? f.password) !== undefined && `--${side}-username/--${side}-password`,
    f.noCreds && `--${side}-no-creds`,
  ].filter(Boolean);
  if (given.length > 1) throw new InvalidInputError(`${given.join(' and ')} cannot be used together`);
  if (f.creds) {
    const i = f.creds.indexOf(':');
    if (i <= 0) throw new InvalidInputError(`--${side}-creds must be USERNAME:PASSWORD`);
    ctx.credentials = { username: f.creds.slice(0, i), password: f.creds.slice(i + 1) };
  }
  if (f.username !== undefined || f.password !== undefined) {
    if (!f.username || f.password === undefined) throw new InvalidInputError(`--${side}-username and --${side}-password go together`);
    ctx.credentials = { username: f.username, password: f.password };
  }
  if (f.noCreds) ctx.ambientCredentials = false;
  if (f.authfile) ctx.authFile = f.authfile;
  if (f.tlsVerify !== undefined) ctx.tlsVerify = f.tlsVerify;
  if (f.certDir) ctx.certDir = f.certDir;
  if (retry) ctx.retry = retry;
  return ctx;
}

/** The context of a one-sided verb (inspect, list-tags): skopeo's --creds/--username/--password/--no-creds/--cert-dir/--retry-*. */
export function readContext(
  o: RetryFlags & { creds?: string; username?: string; password?: string; noCreds?: boolean; tlsVerify?: boolean; authfile?: string; certDir?: string },
): TransportContext {
  // commander turns --no-creds into creds === false next to --creds <user:password>.
  const noCreds = o.noCreds === true || (o.creds as unknown) === false;
  const creds = typeof o.creds === 'string' ? o.creds : undefined;
  return sideContext(
    { creds, username: o.username, password: o.password, noCreds, authfile: o.authfile, tlsVerify: o.tlsVerify, certDir: o.certDir },
    'src',
    retryPolicy(o),
  );
}

/**
 * A Go-template subset for `inspect --format`: `{{.Field}}`, `{{.Field.key}}` (a label), and
 * `{{json .Field}}` (an addition: skopeo 1.9 has no json function). Strings print as they are, lists
 * and maps as Go prints them (`[a b]`, `map[k:v]`).
 */
export function renderTemplate(template: string, data: Record<string, unknown>): string {
  return template
    .replace(/\{\{\s*(json\s+)?\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_.\-/]+)?)\s*\}\}/g, (_m, json: string | undefined, path: string) => {
      const [field, ...rest] = path.split('.');
      if (!(field! in data)) throw new InvalidInputError(`--format: no field "${field}" (fields: ${Object.keys(data).join(', ')})`);
      let v: unknown = data[field!];
      if (rest.length > 0) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[rest.join('.')] : undefined;
      if (json) return JSON.stringify(v ?? null);
      if (v === undefined || v === null) return '<no value>';
      if (Array.isArray(v)) return `[${v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(' ')}]`;
      if (typeof v === 'object') {
        // As Go prints a map[string]string: sorted keys, `map[k:v k2:v2]`.
        const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
        return `map[${entries.map(([k, x]) => `${k}:${String(x)}`).join(' ')}]`;
      }
      return String(v);
    })
    .replace(/\{\{[^}]*\}\}/, (m) => {
      throw new InvalidInputError(`--format: "${m}" is not supported (only {{.Field}}, {{.Field.key}} and {{json .Field}})`);
    });
}
