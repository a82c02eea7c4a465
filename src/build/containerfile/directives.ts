import { ContainerfileError } from './errors.js';

/**
 * Parser directives: `# syntax=`, `# escape=`, `# check=` comments at the very top of the file.
 * BuildKit's rules: they are case-insensitive, may have blanks around `#` and `=`, each may appear
 * once, and the first line that is not a known directive — an instruction, an empty line, an ordinary
 * comment or an unknown directive — ends them. Later lines that look like directives are comments.
 */
export interface Directives {
  syntax?: string;
  /** The escape character: `\` (default) or `` ` `` (Windows-style files). */
  escape: '\\' | '`';
  check?: CheckDirective;
  /** Every directive as written, in order, with its line. */
  all: { name: string; value: string; line: number }[];
}

/** `# check=skip=RuleA,RuleB;error=true;experimental=all` — build-check (lint) settings. */
export interface CheckDirective {
  skip: string[] | 'all';
  error: boolean;
  experimental: string[] | 'all';
}

const DIRECTIVE = /^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$/;
const KNOWN = new Set(['syntax', 'escape', 'check']);
const BOM = '\uFEFF';

/** Reads the directives from the physical lines; `lines[0]` is line 1. */
export function parseDirectives(lines: readonly string[], file: string): Directives {
  const out: Directives = { escape: '\\', all: [] };
  const seen = new Set<string>();
  for (let i = 0; i < lines.length; i++) {
    let text = lines[i]!;
    if (i === 0 && text.startsWith(BOM)) text = text.slice(1);
    const m = DIRECTIVE.exec(text.replace(/^\s+/, ''));
    if (!m) break;
    const name = m[1]!.toLowerCase();
    if (!KNOWN.has(name)) break;
    const value = m[2]!;
    const line = i + 1;
    if (seen.has(name)) throw new ContainerfileError({ file, line }, `only one ${name} parser directive can be used`);
    seen.add(name);
    out.all.push({ name, value, line });
    if (name === 'syntax') out.syntax = value;
    else if (name === 'escape') {
      if (value !== '\\' && value !== '`') {
        throw new ContainerfileError({ file, line }, `invalid escape token '${value}' does not match \` or \\`);
      }
      out.escape = value;
    } else out.check = parseCheck(value, file, line);
  }
  return out;
}

function parseCheck(value: string, file: string, line: number): CheckDirective {
  const check: CheckDirective = { skip: [], error: false, experimental: [] };
  for (const part of value.split(';')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    const v = eq < 0 ? '' : part.slice(eq + 1).trim();
    if (key === 'skip' || key === 'experimental') {
      check[key] =
        v === 'all'
          ? 'all'
          : v
              .split(',')
              .map((s) => s.trim())
              .filter((s) => s !== '');
    } else if (key === 'error') {
      if (!/^(true|false)$/i.test(v)) {
        throw new ContainerfileError({ file, line }, `check directive: error must be true or false, got "${v}"`);
      }
      check.error = v.toLowerCase() === 'true';
    } else {
      throw new ContainerfileError({ file, line }, `check directive: unknown option "${key}"`);
    }
  }
  return check;
}
