import { RE2JS } from 're2js';
import { InvalidInputError } from '../../util/errors.js';

/**
 * Path patterns as Docker reads `.dockerignore` lines and `COPY --exclude` (moby's patternmatcher):
 * Go's `filepath.Match` syntax (`*` and `?` never cross `/`, `[...]` classes with `^`/`!` negation,
 * `\` escapes) plus `**`, which matches any number of whole path segments, zero included. A pattern
 * always matches the whole relative path.
 */
export interface PathPattern {
  /** The cleaned pattern text, without the leading `!`. */
  text: string;
  /** `!` lines: a match re-includes. */
  exclusion: boolean;
  regex: PathRegex;
}

/**
 * A compiled pattern. Matched in linear time (RE2 semantics, as Go's regexp in moby): a pattern such
 * as `a**a**a**b` made a backtracking RegExp take seconds on one long path (found by test/fuzz).
 */
export interface PathRegex {
  test(path: string): boolean;
  readonly source: string;
}

function escapeRegex(ch: string): string {
  return /[.+^${}()|[\]\\*?]/.test(ch) ? `\\${ch}` : ch;
}

/** Lexical clean like Go's path.Clean, for patterns (no file system, `..` kept when leading). */
export function cleanPattern(p: string): string {
  const abs = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..' && out.length > 0 && out[out.length - 1] !== '..') out.pop();
    else if (part === '..' && abs) continue;
    else out.push(part);
  }
  const joined = out.join('/');
  return abs ? `/${joined}` : joined === '' ? '.' : joined;
}

/** The anchored regular expression for one cleaned pattern; `what` names its origin in errors. */
export function compilePattern(text: string, what: string): PathRegex {
  let re = '^';
  let i = 0;
  let stars = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '*') {
      stars++;
      if (text[i + 1] === '*') {
        // `**`: any number of segments. `**/` may also match nothing at all.
        i += 2;
        if (text[i] === '/') {
          i++;
          re += '(?:.*/)?';
        } else {
          re += '.*';
        }
        continue;
      }
      re += '[^/]*';
    } else if (ch === '?') {
      re += '[^/]';
    } else if (ch === '\\') {
      i++;
      if (i >= text.length) throw new InvalidInputError(`${what}: pattern ${JSON.stringify(text)} ends with a lone backslash`);
      re += escapeRegex(text[i]);
    } else if (ch === '[') {
      const end = text.indexOf(']', i + 2);
      if (end < 0) throw new InvalidInputError(`${what}: pattern ${JSON.stringify(text)} has an unclosed "["`);
      let body = text.slice(i + 1, end);
      let negate = false;
      if (body.startsWith('^') || body.startsWith('!')) {
        negate = true;
        body = body.slice(1);
      }
      const cls = body.replace(/\\(.)/g, '$1').replace(/[\]\\^]/g, (c) => `\\${c}`);
      re += negate ? `[^/${cls}]` : `[${cls}]`;
      i = end;
    } else {
      re += escapeRegex(ch);
    }
    i++;
  }
  const source = `${re}$`;
  let compiled: RE2JS;
  try {
    compiled = RE2JS.compile(source, RE2JS.DOTALL);
  } catch (err) {
    // A class such as `[z-a]` has no RE2 form either.
    throw new InvalidInputError(`${what}: pattern ${JSON.stringify(text)} is not valid: ${(err as Error).message}`);
  }
  // With at most one unbounded run (`*` or `**`) a backtracking match is linear too, and V8's
  // engine is several times faster than re2js: most patterns (`*.md`, `node_modules`) use it.
  if (stars <= 1) {
    try {
      const native = new RegExp(source, 's');
      return { source, test: (path: string) => native.test(path) };
    } catch {
      // RE2 read it, V8 does not (a class spelt differently): RE2 it is.
    }
  }
  return { source, test: (path: string) => compiled.test(path) };
}

/**
 * Parses one line the way moby's ignore-file reader does: `#` comments, surrounding blanks trimmed,
 * `!` exceptions, the pattern cleaned and a leading `/` dropped. Returns undefined for lines that
 * hold no pattern.
 */
export function parsePatternLine(raw: string, what: string): PathPattern | undefined {
  if (raw.startsWith('#')) return undefined;
  let text = raw.trim();
  if (text === '') return undefined;
  const exclusion = text.startsWith('!');
  if (exclusion) text = text.slice(1).trim();
  if (text !== '') {
    text = cleanPattern(text);
    if (text.length > 1 && text.startsWith('/')) text = text.slice(1);
  }
  return { text, exclusion, regex: compilePattern(text, what) };
}

/**
 * Whether `relPath` (clean, relative, `/`-separated) is excluded by `patterns`: every pattern is
 * tried in order against the path and each of its parent directories, and the last one that
 * matches decides (a plain pattern excludes, a `!` pattern re-includes).
 */
export function matchesPatterns(patterns: readonly PathPattern[], relPath: string): boolean {
  const parts = relPath.split('/');
  let excluded = false;
  for (const p of patterns) {
    // Only a pattern that could change the answer needs trying.
    if (p.exclusion !== excluded) continue;
    let hit = p.regex.test(relPath);
    for (let i = 1; !hit && i < parts.length; i++) hit = p.regex.test(parts.slice(0, i).join('/'));
    if (hit) excluded = !p.exclusion;
  }
  return excluded;
}
