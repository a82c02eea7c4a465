/**
 * Tag filters as RE2 regular expressions (re2js: linear time, whatever the pattern or the tag), the
 * syntax skopeo (Go's regexp) and the ImageMirror API promise. Constructs RE2 lacks (lookarounds,
 * backreferences) are refused with the user's own pattern in the message.
 */
import { createRequire } from 'node:module';
import { InvalidInputError } from '../util/errors.js';

/** What a selection needs of a regex; a JavaScript RegExp fits too (tests, callers with their own). */
export interface TagMatcher {
  /** The user's pattern, as written (for messages and for writing a configuration back). */
  readonly source: string;
  test(tag: string): boolean;
}

type Re2 = typeof import('re2js');
/** re2js is loaded on first use: most syncs name tags and need no regex. */
let re2: Re2 | undefined;
const lib = (): Re2 => (re2 ??= createRequire(import.meta.url)('re2js') as Re2);

/**
 * Compiles `pattern` under RE2 rules. `full`: the whole tag must match (ImageMirror allow/deny);
 * otherwise a match anywhere counts, as Go's MatchString in skopeo sync's images-by-tag-regex.
 * `where` names the field in the error (e.g. `spec.tags.allow`).
 */
export function compileTagRegex(pattern: string, where: string, opts: { full?: boolean } = {}): TagMatcher {
  const { RE2JS } = lib();
  let re: InstanceType<Re2['RE2JS']>;
  try {
    re = RE2JS.compile(pattern);
  } catch (err) {
    const why = (err as Error).message.replace(/^error parsing regexp: /, '');
    const hint = /\(\?[!=<]/.test(pattern) ? ' (RE2 has no lookahead or lookbehind: use a deny pattern instead)' : '';
    throw new InvalidInputError(`${where}: "${pattern}" is not a valid RE2 regular expression: ${why}${hint}`);
  }
  return opts.full ? { source: pattern, test: (tag) => re.matches(tag) } : { source: pattern, test: (tag) => re.matcher(tag).find() };
}
