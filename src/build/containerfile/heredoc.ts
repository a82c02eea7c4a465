import { expandWords } from './expand.js';

/**
 * Here-documents (`<<EOT` ... `EOT`) as BuildKit supports them on RUN, COPY and ADD (and ONBUILD of
 * those): several per line, `<<-` strips leading tabs, a quoted marker (`<<"EOT"`, `<<'EOT'`,
 * or any part quoted) means the body is not expanded, and `3<<EOT` names a file descriptor.
 */
export interface Heredoc {
  /** The terminator word, quotes removed. */
  name: string;
  /** The body exactly as written, each line ending in "\n" (tabs not yet stripped for `<<-`). */
  content: string;
  /** False when any part of the marker was quoted: the body is then taken literally. */
  expand: boolean;
  /** `<<-`: leading tabs are removed from the body lines and the terminator. */
  chomp: boolean;
  /** `n<<EOT`: the file descriptor the shell feeds it to (0 when not given). */
  fd: number;
}

export type HeredocMarker = Omit<Heredoc, 'content'>;

const MARKER = /^(\d*)<<(-?)([^<]*)$/;
const NO_VARS = (): undefined => undefined;

/** Parses one word as a heredoc marker (`<<EOT`, `<<-"EOT"`, `2<<EOT`), or undefined if it is none. */
export function parseHeredocMarker(word: string): HeredocMarker | undefined {
  const m = MARKER.exec(word);
  if (!m) return undefined;
  const rest = m[3]!;
  let words: string[];
  let raw: string[];
  try {
    words = expandWords(rest, NO_VARS);
    raw = expandWords(rest, NO_VARS, { rawQuotes: true });
  } catch {
    return undefined;
  }
  // The marker must be exactly one word; `<<EOT bash` is not a heredoc word.
  if (words.length !== 1 || raw.length !== 1) return undefined;
  const quoteCount = (s: string): number => (s.match(/['"]/g) ?? []).length;
  return {
    name: words[0]!,
    expand: quoteCount(words[0]!) === quoteCount(raw[0]!),
    chomp: m[2] === '-',
    fd: m[1] === '' ? 0 : Number(m[1]),
  };
}

/**
 * The heredoc markers on an instruction line, in order. The line is split like a shell would (quotes
 * and escapes kept), so `echo "<<EOT"` has none, while `cat <<A >a && cat <<B >b` has two.
 */
export function heredocMarkers(line: string): HeredocMarker[] {
  if (!line.includes('<<')) return [];
  let words: string[];
  try {
    words = expandWords(line, NO_VARS, { rawQuotes: true, rawEscapes: true });
  } catch {
    return [];
  }
  return words.map(parseHeredocMarker).filter((h): h is HeredocMarker => h !== undefined);
}

/** `<<-` bodies lose their leading tabs (never spaces), line by line. */
export function chompHeredoc(content: string): string {
  return content.replace(/^\t+/gm, '');
}

/** Whether a physical line ends the heredoc: the terminator alone, after tabs for `<<-`. */
export function isTerminator(line: string, marker: HeredocMarker): boolean {
  return (marker.chomp ? line.replace(/^\t+/, '') : line) === marker.name;
}
