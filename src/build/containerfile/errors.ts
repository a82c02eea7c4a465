import { StevedoreError } from '../../util/errors.js';

/** Where in a Containerfile something went wrong; `line` is 1-based, absent for file-wide problems. */
export interface SourceLocation {
  file: string;
  line?: number;
  instruction?: string;
}

/**
 * Every parse or planning error in a Containerfile. The message always starts with `file:line:` and
 * the instruction (as compilers do), so a user can jump straight to the offending line; the same facts
 * are also fields, so callers (status conditions, the CLI) never parse the message.
 */
export class ContainerfileError extends StevedoreError {
  readonly file: string;
  readonly line: number | undefined;
  readonly instruction: string | undefined;
  /** The message without the location prefix. */
  readonly detail: string;

  constructor(loc: SourceLocation, detail: string, opts: { cause?: unknown } = {}) {
    super('CONTAINERFILE_ERROR', formatLocation(loc) + detail, opts);
    this.file = loc.file;
    this.line = loc.line;
    this.instruction = loc.instruction;
    this.detail = detail;
  }
}

function formatLocation(loc: SourceLocation): string {
  const where = loc.line === undefined ? `${loc.file}: ` : `${loc.file}:${loc.line}: `;
  return loc.instruction === undefined ? where : `${where}${loc.instruction}: `;
}

/**
 * A problem found while lexing a word (an unmatched quote, `${` without `}`, `${X:?msg}`). It has no
 * location of its own: the instruction that expanded the word wraps it into a ContainerfileError.
 */
export class ExpansionError extends StevedoreError {
  constructor(message: string) {
    super('EXPANSION_ERROR', message);
  }
}

/** Levenshtein distance, for "did you mean" hints on misspelt instruction names and flags. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = prev[j]!;
      prev[j] = Math.min(above + 1, prev[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return prev[b.length]!;
}

/**
 * The candidate closest to `word`, if it is close enough to be a plausible typo: at most a third of the
 * word's letters differ (so "RUNN" → RUN, "COPYY" → COPY, but "FOO" suggests nothing), or the word is
 * an abbreviation of exactly one candidate ("--plat" → --platform).
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toUpperCase();
  const prefixed = candidates.filter((c) => w.length >= 3 && c.toUpperCase().startsWith(w));
  if (prefixed.length === 1) return prefixed[0];
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, c.toUpperCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(1, Math.floor(w.length / 3)) ? best : undefined;
}
