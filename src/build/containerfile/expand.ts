import { ExpansionError } from './errors.js';

/**
 * Variable expansion and word splitting with the semantics of BuildKit's shell lexer
 * (frontend/dockerfile/shell): a deliberately small subset of POSIX sh, because the builder — not a
 * shell — evaluates ENV, COPY, WORKDIR, ... values. RUN, CMD and ENTRYPOINT are never expanded here:
 * their shell does that at run time.
 *
 * Supported: `$name`, `${name}`, `${name:-word}`, `${name-word}`, `${name:+word}`, `${name+word}`,
 * `${name:?msg}`, `${name?msg}`, `${name#pat}`, `${name##pat}`, `${name%pat}`, `${name%%pat}`,
 * `${name/pat/repl}`, `${name//pat/repl}`; single quotes (everything literal), double quotes
 * (only `$` and escapes of `"`, `$` and the escape character are special), and the escape character
 * (`\` or the `# escape=` one) outside quotes.
 */

/** Where variables come from: a map, a plain record, or a lookup function (undefined = unset). */
export type Vars = ReadonlyMap<string, string> | Readonly<Record<string, string>> | ((name: string) => string | undefined);

export interface LexOptions {
  /** The escape character of the file (`# escape=`); `\` by default. */
  escape?: string;
  /** Keep quote characters in the result (used to find heredoc markers on a line). */
  rawQuotes?: boolean;
  /** Keep escape characters in the result. */
  rawEscapes?: boolean;
  /** Treat quotes as ordinary characters (how BuildKit expands heredoc bodies). */
  skipProcessQuotes?: boolean;
  /** Leave references to unset variables as written instead of replacing them with "". */
  skipUnset?: boolean;
}

/** Expands one word; whitespace (even unquoted) is kept, quotes are removed. */
export function expandWord(word: string, vars: Vars, opts: LexOptions = {}): string {
  return new ShellWord(word, toLookup(vars), opts).process().text;
}

/** Expands and splits into words on unquoted whitespace, including whitespace that came from `$var`. */
export function expandWords(word: string, vars: Vars, opts: LexOptions = {}): string[] {
  return new ShellWord(word, toLookup(vars), opts).process().words;
}

/** Short alias: the brief's `expand(word, env)`. */
export const expand = expandWord;

/** The names a word refers to, set or not (for "unused build-arg" and lint-like reporting). */
export function referencedNames(word: string, opts: LexOptions = {}): string[] {
  const seen = new Set<string>();
  try {
    new ShellWord(
      word,
      (name) => {
        seen.add(name);
        return undefined;
      },
      opts,
    ).process();
  } catch {
    // A malformed word still names what it names up to the error; the error surfaces on expansion.
  }
  return [...seen];
}

export function toLookup(vars: Vars): (name: string) => string | undefined {
  if (typeof vars === 'function') return vars;
  if (vars instanceof Map) return (name) => vars.get(name);
  const record = vars as Readonly<Record<string, string>>;
  return (name) => (Object.hasOwn(record, name) ? record[name] : undefined);
}

const WHITESPACE = /\s/u;

/** Accumulates the split words: `$` results split on whitespace, quoted text never does. */
class WordSplitter {
  readonly words: string[] = [];
  private buf = '';
  private inWord = false;

  addChar(ch: string): void {
    if (WHITESPACE.test(ch)) {
      if (this.inWord && this.buf.length > 0) {
        this.words.push(this.buf);
        this.buf = '';
        this.inWord = false;
      }
    } else {
      this.addRaw(ch);
    }
  }
  addSplitting(s: string): void {
    for (const ch of s) this.addChar(ch);
  }
  addRaw(s: string): void {
    this.buf += s;
    this.inWord = true;
  }
  finish(): string[] {
    // An empty quoted string ("") does not make a word, as in BuildKit.
    if (this.buf.length > 0) this.words.push(this.buf);
    this.buf = '';
    this.inWord = false;
    return this.words;
  }
}

class ShellWord {
  private readonly chars: string[];
  private pos = 0;
  private rawEscapes: boolean;
  private readonly escape: string;

  constructor(
    private readonly source: string,
    private readonly lookup: (name: string) => string | undefined,
    private readonly opts: LexOptions,
  ) {
    // Code points, not UTF-16 units, so a name or a pattern never splits a surrogate pair.
    this.chars = Array.from(source);
    this.rawEscapes = opts.rawEscapes ?? false;
    this.escape = opts.escape ?? '\\';
  }

  process(): { text: string; words: string[] } {
    try {
      return this.stopOn(undefined, this.rawEscapes);
    } catch (err) {
      if (err instanceof ExpansionError) throw new ExpansionError(`${err.message} (in ${JSON.stringify(this.source)})`);
      throw err;
    }
  }

  private peek(): string | undefined {
    return this.chars[this.pos];
  }
  private next(): string | undefined {
    return this.chars[this.pos++];
  }

  /** Reads up to `stop` (or the end), expanding as it goes; `rawEscapes` applies only within this span. */
  private stopOn(stop: string | undefined, rawEscapes: boolean): { text: string; words: string[] } {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      let text = '';
      const words = new WordSplitter();
      const quotes = !this.opts.skipProcessQuotes;
      for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
        if (stop !== undefined && ch === stop) {
          this.next();
          return { text, words: words.finish() };
        }
        if (ch === '$') {
          const value = this.dollar();
          text += value;
          words.addSplitting(value);
        } else if (quotes && ch === "'") {
          const value = this.singleQuote();
          text += value;
          words.addRaw(value);
        } else if (quotes && ch === '"') {
          const value = this.doubleQuote();
          text += value;
          words.addRaw(value);
        } else {
          this.next();
          if (ch === this.escape) {
            if (this.rawEscapes) {
              words.addRaw(ch);
              text += ch;
            }
            // An escape at the very end escapes nothing and disappears.
            const escaped = this.next();
            if (escaped === undefined) break;
            words.addRaw(escaped);
            text += escaped;
          } else {
            words.addChar(ch);
            text += ch;
          }
        }
      }
      if (stop !== undefined) throw new ExpansionError(`unexpected end of statement while looking for matching ${stop}`);
      return { text, words: words.finish() };
    } finally {
      this.rawEscapes = saved;
    }
  }

  /** Single quotes: everything literal up to the next `'`; a `'` cannot be escaped inside. */
  private singleQuote(): string {
    let out = this.opts.rawQuotes ? "'" : '';
    this.next();
    for (;;) {
      const ch = this.next();
      if (ch === undefined) throw new ExpansionError('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") return this.opts.rawQuotes ? out + ch : out;
      out += ch;
    }
  }

  /**
   * Double quotes: `$` expands; the escape character escapes only `"`, `$` and itself and is
   * otherwise kept literally (so "a\nb" stays a\nb, as in sh).
   */
  private doubleQuote(): string {
    let out = this.opts.rawQuotes ? '"' : '';
    this.next();
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) throw new ExpansionError('unexpected end of statement while looking for matching double-quote');
      if (ch === '"') {
        this.next();
        return this.opts.rawQuotes ? out + ch : out;
      }
      if (ch === '$') {
        out += this.dollar();
        continue;
      }
      let c = this.next()!;
      if (c === this.escape) {
        if (this.rawEscapes) out += c;
        const after = this.peek();
        if (after === undefined) continue;
        if (after === '"' || after === '$' || after === this.escape) c = this.next()!;
      }
      out += c;
    }
  }

  private get(name: string): string | undefined {
    return this.lookup(name);
  }

  private dollar(): string {
    this.next(); // the '$'
    if (this.peek() !== '{') {
      const name = this.name();
      if (name === '') return '$';
      const value = this.get(name);
      if (value === undefined && this.opts.skipUnset) return `$${name}`;
      return value ?? '';
    }
    this.next(); // the '{'
    const first = this.peek();
    if (first === undefined) throw new ExpansionError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new ExpansionError('syntax error: bad substitution');

    const name = this.name();
    let op = this.next();
    if (op === undefined) throw new ExpansionError("syntax error: missing '}'");
    let opText = op;
    if (op === '}') {
      const value = this.get(name);
      if (value === undefined && this.opts.skipUnset) return `\${${name}}`;
      return value ?? '';
    }
    if (op === '/') return this.replace(name);

    // `:` makes "set but empty" count as unset for -, + and ?.
    let nullIsUnset = false;
    if (op === ':') {
      nullIsUnset = true;
      op = this.next();
      if (op === undefined) throw new ExpansionError("syntax error: missing '}'");
      opText += op;
    }
    if (!'+-?#%'.includes(op) || (nullIsUnset && (op === '#' || op === '%'))) {
      throw new ExpansionError(`unsupported modifier (${opText}) in substitution`);
    }
    // Patterns keep their escapes so `\*` can mean a literal star.
    let word: string;
    try {
      word = this.stopOn('}', op === '#' || op === '%').text;
    } catch (err) {
      if (this.peek() === undefined) throw new ExpansionError("syntax error: missing '}'");
      throw err;
    }
    const value = this.get(name);
    if (value === undefined && this.opts.skipUnset) return `\${${name}${opText}${word}}`;
    const unset = value === undefined || (nullIsUnset && value === '');
    switch (op) {
      case '-':
        return unset ? word : value!;
      case '+':
        return unset ? '' : word;
      case '?':
        if (value === undefined) throw new ExpansionError(`${name}: ${word || 'is not allowed to be unset'}`);
        if (nullIsUnset && value === '') throw new ExpansionError(`${name}: ${word || 'is not allowed to be empty'}`);
        return value;
      default: {
        // `#`/`%` remove the shortest matching prefix/suffix, `##`/`%%` the longest.
        const longest = word.startsWith(op);
        const pattern = longest ? word.slice(op.length) : word;
        return op === '#' ? trimPrefix(value ?? '', pattern, longest) : trimSuffix(value ?? '', pattern, longest);
      }
    }
  }

  /** `${name/pattern/replacement}` (first match) and `${name//pattern/replacement}` (every match). */
  private replace(name: string): string {
    const all = this.peek() === '/';
    if (all) this.next();
    let pattern: string;
    let replacement: string;
    try {
      pattern = this.stopOn('/', true).text;
    } catch (err) {
      if (this.peek() === undefined) throw new ExpansionError("syntax error: missing '/' in ${}");
      throw err;
    }
    try {
      replacement = this.stopOn('}', true).text;
    } catch (err) {
      if (this.peek() === undefined) throw new ExpansionError("syntax error: missing '}'");
      throw err;
    }
    const value = this.get(name);
    if (value === undefined && this.opts.skipUnset) return `\${${name}/${pattern}/${replacement}}`;
    const re = new RegExp(shellPatternSource(pattern, true), all ? 'gu' : 'u');
    // A function replacement, so `$&` and friends in the replacement stay literal.
    return (value ?? '').replace(re, () => replacement);
  }

  /** A name: letters, digits and `_`; or a run of digits; or one special parameter (`$@`, `$?`, ...). */
  private name(): string {
    let name = '';
    for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
      if (name === '' && /^\p{Nd}$/u.test(ch)) {
        while (this.peek() !== undefined && /^\p{Nd}$/u.test(this.peek()!)) name += this.next();
        return name;
      }
      if (name === '' && '@*#?-$!0'.includes(ch)) {
        this.next();
        return ch;
      }
      if (!/^[\p{L}\p{Nd}_]$/u.test(ch)) break;
      name += this.next();
    }
    return name;
  }
}

/**
 * A shell wildcard pattern (`*`, `?`, `\` escaping; no bracket expressions, as in BuildKit) as a
 * regular expression source. `\}` and `\/` are how a pattern spells `}` and `/` inside `${...}`.
 */
function shellPatternSource(pattern: string, greedy: boolean): string {
  const chars = Array.from(pattern);
  let out = '';
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === '*') out += greedy ? '[\\s\\S]*' : '[\\s\\S]*?';
    else if (c === '?') out += '[\\s\\S]';
    else if (c === '\\') {
      const n = chars[i + 1];
      if (n === undefined) throw new ExpansionError(`invalid pattern (${pattern}) in substitution: trailing escape`);
      i++;
      out += escapeRegExp(n);
    } else out += escapeRegExp(c);
  }
  return out;
}

function escapeRegExp(c: string): string {
  return /[\\^$.*+?()[\]{}|/-]/.test(c) ? `\\${c}` : c;
}

function trimPrefix(value: string, pattern: string, longest: boolean): string {
  const re = new RegExp(`^(?:${shellPatternSource(pattern, true)})$`, 'u');
  const cps = Array.from(value);
  // Try every prefix length from the shortest (or the longest) end; shell semantics, no regex tricks.
  for (let k = 0; k <= cps.length; k++) {
    const n = longest ? cps.length - k : k;
    if (re.test(cps.slice(0, n).join(''))) return cps.slice(n).join('');
  }
  return value;
}

function trimSuffix(value: string, pattern: string, longest: boolean): string {
  const re = new RegExp(`^(?:${shellPatternSource(pattern, true)})$`, 'u');
  const cps = Array.from(value);
  for (let k = 0; k <= cps.length; k++) {
    const n = longest ? cps.length - k : k;
    if (re.test(cps.slice(cps.length - n).join(''))) return cps.slice(0, cps.length - n).join('');
  }
  return value;
}
