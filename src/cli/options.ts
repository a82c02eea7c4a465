import type { Command } from 'commander';
import { InvalidInputError } from '../util/errors.js';
import type { TransportContext } from '../transports/types.js';
import type { Credentials } from '../registry/credentials.js';

/** `user:password` (the password may contain colons; the user may not), as skopeo's --creds. */
export function parseCreds(value: string | undefined): Credentials | undefined {
  if (value === undefined) return undefined;
  const i = value.indexOf(':');
  if (i <= 0) throw new InvalidInputError(`credentials must be USERNAME:PASSWORD`);
  return { username: value.slice(0, i), password: value.slice(i + 1) };
}

export function parseBool(value: string): boolean {
  if (['true', '1', 'yes'].includes(value)) return true;
  if (['false', '0', 'no'].includes(value)) return false;
  throw new InvalidInputError(`expected true or false, got "${value}"`);
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidInputError(`expected a positive whole number, got "${value}"`);
  return n;
}

/** A grace period in whole seconds (`stop -t`, `rm -t`): 0 is allowed (SIGKILL at once), unlike other counts. */
export const parseSeconds = (v: string): number => (v === '0' ? 0 : parsePositiveInt(v));

/** `--compression-format`'s value (push, build; copy's `--dest-compress-format`): checked before any work starts. */
export function parseCompressionFormat(value: string, flag = '--compression-format'): 'gzip' | 'zstd' | 'zstd:chunked' {
  if (value !== 'gzip' && value !== 'zstd' && value !== 'zstd:chunked')
    throw new InvalidInputError(`${flag} must be gzip, zstd or zstd:chunked, got "${value}"`);
  return value;
}

/** Options common to every verb that reads one image. */
export function addSourceOptions(cmd: Command): Command {
  return cmd
    .option('--creds <user:password>', 'credentials for the registry')
    .option('--tls-verify <bool>', 'require HTTPS and verify certificates (default: true; loopback may use HTTP)', parseBool)
    .option('--authfile <path>', 'auth file (default: $REGISTRY_AUTH_FILE, containers auth.json, ~/.docker/config.json)');
}

export function contextFrom(o: { creds?: string; tlsVerify?: boolean; authfile?: string }): TransportContext {
  const ctx: TransportContext = {};
  const creds = parseCreds(o.creds);
  if (creds) ctx.credentials = creds;
  if (o.tlsVerify !== undefined) ctx.tlsVerify = o.tlsVerify;
  if (o.authfile) ctx.authFile = o.authfile;
  return ctx;
}
