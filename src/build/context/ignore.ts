import { readFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { InvalidInputError } from '../../util/errors.js';
import { rootLogger } from '../../util/log.js';
import { matchesPatterns, parsePatternLine, type PathPattern } from './patterns.js';

const log = rootLogger.child({ component: 'build-context' });

/** Decides which context paths a build cannot see (`.containerignore` / `.dockerignore`). */
export interface IgnoreMatcher {
  /** `relPath`: clean, relative to the context root, `/`-separated. */
  ignored(relPath: string, isDir: boolean): boolean;
  /**
   * Whether any `!` exception exists: a walker must then look inside ignored directories, since a
   * file below one may be re-included. Optional so trivial matchers need not say.
   */
  readonly hasExceptions?: boolean;
  /** Which file the patterns came from, for messages; undefined when none. */
  readonly source?: string;
}

export const NO_IGNORE: IgnoreMatcher = { ignored: () => false, hasExceptions: false };

/** A matcher from pattern lines (the contents of an ignore file, or `COPY --exclude` values). */
export function ignoreFromLines(lines: readonly string[], what: string): IgnoreMatcher {
  const patterns: PathPattern[] = [];
  for (const [i, raw] of lines.entries()) {
    // A UTF-8 byte order mark on the first line is not part of the pattern.
    const line = i === 0 ? raw.replace(/^\uFEFF/, '') : raw;
    const p = parsePatternLine(line, `${what}:${i + 1}`);
    if (p) patterns.push(p);
  }
  const hasExceptions = patterns.some((p) => p.exclusion);
  return {
    ignored: (relPath: string) => relPath !== '' && relPath !== '.' && matchesPatterns(patterns, relPath),
    hasExceptions,
    source: what,
  };
}

/** Ignore files above 1 MiB are refused before their patterns are compiled. */
export const MAX_IGNORE_FILE_BYTES = 1024 * 1024;

async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/**
 * Loads the ignore rules for a build, in BuildKit's order of precedence: `<Containerfile>.containerignore`
 * or `<Containerfile>.dockerignore` beside the Containerfile, else `.containerignore`, else
 * `.dockerignore` in the context root. A relative `containerfilePath` is taken inside the context.
 */
export async function loadIgnore(contextDir: string, containerfilePath?: string): Promise<IgnoreMatcher> {
  const candidates: string[] = [];
  if (containerfilePath) {
    const cf = isAbsolute(containerfilePath) ? containerfilePath : join(contextDir, containerfilePath);
    candidates.push(join(dirname(cf), `${basename(cf)}.containerignore`), join(dirname(cf), `${basename(cf)}.dockerignore`));
  }
  candidates.push(join(contextDir, '.containerignore'), join(contextDir, '.dockerignore'));
  for (const path of candidates) {
    const text = await readIfPresent(path);
    if (text === undefined) continue;
    const size = Buffer.byteLength(text);
    if (size > MAX_IGNORE_FILE_BYTES) throw new InvalidInputError(`${path}: ${size} bytes exceed the ${MAX_IGNORE_FILE_BYTES}-byte limit for an ignore file`);
    const matcher = ignoreFromLines(text.split(/\r?\n/), path);
    log.debug({ file: path }, 'ignore file loaded');
    return matcher;
  }
  return NO_IGNORE;
}
