import { closest } from './errors.js';

/**
 * Instruction flags (`--from=x`, `--link`, `--mount=...` repeated) as BuildKit's BFlags reads them:
 * a string flag needs `=value`; a boolean takes nothing or `=true`/`=false`; a list flag may repeat;
 * any other flag may appear once. Errors are plain messages: the caller adds file, line and
 * instruction.
 */
export type FlagKind = 'string' | 'bool' | 'list';
export type FlagSpec = Readonly<Record<string, FlagKind>>;

export interface ParsedFlags {
  strings: Map<string, string>;
  bools: Map<string, boolean>;
  lists: Map<string, string[]>;
}

export class FlagError extends Error {}

export function parseFlags(raw: readonly string[], spec: FlagSpec): ParsedFlags {
  const out: ParsedFlags = { strings: new Map(), bools: new Map(), lists: new Map() };
  const seen = new Set<string>();
  for (const arg of raw) {
    if (!arg.startsWith('--')) throw new FlagError(`arg should start with -- : ${arg}`);
    const body = arg.slice(2);
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    const value = eq < 0 ? undefined : body.slice(eq + 1);
    const kind = spec[name];
    if (kind === undefined) {
      const hint = closest(name, Object.keys(spec));
      throw new FlagError(`unknown flag: --${name}${hint ? ` (did you mean --${hint}?)` : ''}`);
    }
    if (kind !== 'list') {
      if (seen.has(name)) throw new FlagError(`duplicate flag specified: --${name}`);
      seen.add(name);
    }
    if (kind === 'bool') {
      if (value === undefined) out.bools.set(name, true);
      else if (/^true$/i.test(value)) out.bools.set(name, true);
      else if (/^false$/i.test(value)) out.bools.set(name, false);
      else throw new FlagError(`expecting boolean value for flag --${name}, not: ${value}`);
      continue;
    }
    if (value === undefined) throw new FlagError(`missing a value on flag: --${name}`);
    if (kind === 'string') out.strings.set(name, value);
    else out.lists.set(name, [...(out.lists.get(name) ?? []), value]);
  }
  return out;
}

/** Whether a value will be expanded later and so cannot be checked yet. */
export function hasVariable(value: string): boolean {
  return value.includes('$');
}

/** `--chmod` takes an octal mode (`755`, `0644`); BuildKit's classic rule. */
export function checkChmod(value: string): string | undefined {
  return /^[0-7]{3,4}$/.test(value) ? undefined : `--chmod requires an octal mode, got "${value}"`;
}

/** `--checksum` takes `sha256:<64 hex>` (or sha384/sha512) for URLs and Git sources. */
export function checkChecksum(value: string): string | undefined {
  const m = /^(sha256|sha384|sha512):([a-f0-9]+)$/.exec(value);
  const lengths: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };
  if (m && m[2]!.length === lengths[m[1]!]) return undefined;
  return `--checksum requires a digest such as sha256:<64 hex digits>, got "${value}"`;
}
