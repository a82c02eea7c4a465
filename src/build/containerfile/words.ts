/**
 * The line-level splitting BuildKit's parser does before any expansion: the instruction word, its
 * `--flags`, the JSON (exec) form test, quote-aware word lists for ENV/LABEL/ARG, and plain
 * whitespace lists for COPY/ADD/EXPOSE/FROM. Quotes and escapes are kept here; expansion removes
 * them later, against the stage's variables.
 */

/** BuildKit's reWhitespace: blanks, not newlines (a logical line has none). */
const WHITESPACE_RUN = /[\t\v\f\r ]+/;
const IS_SPACE = /^\s$/u;

export interface SplitLine {
  command: string;
  flags: string[];
  rest: string;
}

/** `RUN --mount=a  echo hi` → command RUN, flags [--mount=a], rest `echo hi`. */
export function splitCommand(line: string): SplitLine {
  const trimmed = line.trim();
  const m = WHITESPACE_RUN.exec(trimmed);
  if (!m) return { command: trimmed, flags: [], rest: '' };
  const command = trimmed.slice(0, m.index);
  const { flags, rest } = extractFlags(trimmed.slice(m.index + m[0].length));
  return { command, flags, rest: rest.trim() };
}

/**
 * Leading `--name[=value]` words. Quotes inside a flag group spaces (`--chown="a b"`), a backslash
 * escapes one character, and a lone `--` ends the flags. The first word not starting with `--` starts
 * the arguments, which are returned untouched.
 */
export function extractFlags(line: string): { flags: string[]; rest: string } {
  const flags: string[] = [];
  const chars = Array.from(line);
  let pos = 0;
  for (;;) {
    while (pos < chars.length && IS_SPACE.test(chars[pos]!)) pos++;
    if (pos >= chars.length) return { flags, rest: '' };
    if (chars[pos] !== '-' || chars[pos + 1] !== '-') return { flags, rest: chars.slice(pos).join('') };
    let word = '';
    let quote: string | undefined;
    let quoted = false;
    for (; pos < chars.length; pos++) {
      const ch = chars[pos]!;
      if (quote !== undefined) {
        if (ch === quote) quote = undefined;
        else if (ch === '\\' && pos + 1 < chars.length) word += chars[++pos];
        else if (ch !== '\\') word += ch;
        continue;
      }
      if (IS_SPACE.test(ch)) break;
      if (ch === '"' || ch === "'") {
        quote = ch;
        quoted = true;
      } else if (ch === '\\') {
        if (pos + 1 < chars.length) word += chars[++pos];
      } else word += ch;
    }
    if (word === '--' && !quoted) return { flags, rest: chars.slice(pos).join('').trimStart() };
    if (word.length > 0 || quoted) flags.push(word);
  }
}

/** Why a JSON array was rejected although it parsed: BuildKit refuses it rather than falling back. */
export class NotStringArrayError extends Error {}

/**
 * The exec form: a JSON array of strings. Anything that is not valid JSON (or not an array) is the
 * shell form, exactly as BuildKit decides, so `RUN [ -f x ] && y` stays a shell command. A valid
 * array holding a non-string is an error, not a fallback.
 */
export function parseJsonArray(rest: string): string[] | undefined {
  const text = rest.trimStart();
  if (!text.startsWith('[')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value)) return undefined;
  if (!value.every((v): v is string => typeof v === 'string')) {
    throw new NotStringArrayError('when using JSON array syntax, arrays must be comprised of strings only');
  }
  return value;
}

/** Whitespace split with no quote handling (COPY/ADD sources, EXPOSE, FROM, VOLUME shell form). */
export function splitWhitespace(rest: string): string[] {
  if (rest === '') return [];
  return rest.split(WHITESPACE_RUN).filter((w) => w !== '');
}

/**
 * Quote-aware split for ENV, LABEL and ARG that keeps the quotes and escapes in each word (the
 * expander removes them later). Inside single quotes the escape character is literal; elsewhere it
 * protects the next character, even a quote or a space.
 */
export function splitQuotedWords(rest: string, escape: string): string[] {
  const words: string[] = [];
  const chars = Array.from(rest);
  let word = '';
  let inWord = false;
  let quote: string | undefined;
  for (let pos = 0; pos < chars.length; pos++) {
    let ch = chars[pos]!;
    if (quote === undefined) {
      if (IS_SPACE.test(ch)) {
        if (inWord) words.push(word);
        word = '';
        inWord = false;
        continue;
      }
      inWord = true;
      if (ch === '"' || ch === "'") quote = ch;
      else if (ch === escape) {
        if (pos + 1 === chars.length) continue; // a trailing escape vanishes
        word += ch;
        ch = chars[++pos]!;
      }
      word += ch;
      continue;
    }
    if (ch === quote) quote = undefined;
    else if (ch === escape && quote !== "'") {
      if (pos + 1 === chars.length) continue;
      word += ch;
      ch = chars[++pos]!;
    }
    word += ch;
  }
  if (inWord) words.push(word);
  return words;
}
