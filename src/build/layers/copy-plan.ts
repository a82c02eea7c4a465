import type { Stats } from 'node:fs';
import { lstat, readdir, stat } from 'node:fs/promises';
import { posix, relative, sep } from 'node:path';
import { compilePattern, type PathRegex } from '../context/patterns.js';
import { ignoreFromLines, type IgnoreMatcher } from '../context/ignore.js';
import { resolveInRoot, splitRootedPath } from '../../runtime/unpack/index.js';
import { InvalidInputError, NotFoundError } from '../../util/errors.js';
import type { LayerEntry } from './entry.js';

/** One COPY or ADD instruction, as the executor hands it over (flags already parsed). */
export interface CopySpec {
  sources: string[];
  dest: string;
  /** The stage's WORKDIR, for a relative dest. */
  workdir: string;
  chown?: { uid: number; gid: number };
  chmod?: number;
  exclude?: string[];
  parents?: boolean;
  /** ADD: local tar archives (plain, gzip, bzip2, xz, zstd) are unpacked at the destination. */
  add?: boolean;
}

/** Where sources are read from: the build context, or another stage's rootfs for `--from`. */
export interface CopyRoot {
  dir: string;
  ignore?: IgnoreMatcher;
  /**
   * Keep the sources' owners (COPY --from another stage or image, as BuildKit does). Unset: copied
   * files belong to 0:0, as Docker does for the build context.
   */
  preserveOwnership?: boolean;
  /** What the root is, for messages: "the build context" unless told (e.g. `stage "builder"`). */
  what?: string;
}

/** A source as the user named it, found in the root. */
export interface MatchedSource {
  /** The source as written in the instruction, for messages. */
  what: string;
  /** Root-relative path of the match as named (before symlinks are followed); '' is the root. */
  rel: string;
  /** With --parents: the path kept below the destination. */
  parentsRel: string;
  /** Where it really is: symlinks in the name followed inside the root. */
  host: string;
  st: Stats;
}

const GLOB = /(^|[^\\])[*?[]/;

function label(spec: CopySpec): string {
  return spec.add ? 'ADD' : 'COPY';
}

function toRel(root: string, host: string): string {
  const r = relative(root, host);
  return r === '' ? '' : r.split(sep).join('/');
}

/** Splits a source at the `--parents` pivot (`a/./b`: only `b...` is kept under the destination). */
function pivotDepth(src: string): number {
  const trimmed = src.replace(/^(\.\/)+/, '').replace(/^\/+/, '');
  const at = trimmed.indexOf('/./');
  if (at < 0) return 0;
  return splitRootedPath(trimmed.slice(0, at))?.length ?? 0;
}

function dropComponents(rel: string, n: number): string {
  return rel.split('/').filter(Boolean).slice(n).join('/');
}

async function statFollowed(root: string, rel: string): Promise<{ host: string; st: Stats } | undefined> {
  const host = await resolveInRoot(root, rel);
  try {
    return { host, st: await lstat(host) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** Lists root-relative paths a glob of `depth` components (Infinity with `**`) could match. */
async function globMatches(root: string, ignore: IgnoreMatcher | undefined, regex: PathRegex, depth: number): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string, level: number): Promise<void> => {
    const names = (await readdir(rel === '' ? root : `${root}/${rel}`)).sort();
    const stats = await lstatAll(names.map((name) => `${root}/${rel === '' ? name : `${rel}/${name}`}`));
    for (const [i, name] of names.entries()) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const st = stats[i]!;
      const hidden = ignore?.ignored(r, st.isDirectory()) ?? false;
      if (!hidden && regex.test(r)) {
        out.push(r);
        continue;
      }
      if (st.isDirectory() && level + 1 < depth && (!hidden || ignore?.hasExceptions)) await walk(r, level + 1);
    }
  };
  await walk('', 0);
  return out;
}

/**
 * Finds every source of an instruction in the root, as Docker does: names are cleaned and taken
 * relative to the root (a `..` that would leave it is refused), symlinks along a name are followed
 * inside the root only, wildcards are matched against root-relative paths, and anything the ignore
 * file hides does not exist. A named source that is missing is an error naming it; a wildcard
 * that matches nothing is skipped when another source matched (`COPY package.json yarn.lock* ./`,
 * as buildah and Docker), and an error naming every such wildcard when none did.
 */
export async function matchSources(root: CopyRoot, spec: CopySpec): Promise<MatchedSource[]> {
  if (spec.sources.length === 0) throw new InvalidInputError(`${label(spec)} needs at least one source`);
  const matched: MatchedSource[] = [];
  const where = root.what ?? 'the build context';
  const unmatched: string[] = [];
  for (const what of spec.sources) {
    const comps = splitRootedPath(what);
    if (comps === null) {
      throw new InvalidInputError(`${label(spec)} source ${JSON.stringify(what)} points outside ${where}`);
    }
    const pivot = spec.parents ? pivotDepth(what) : 0;
    const rels: string[] = [];
    if (GLOB.test(comps.join('/'))) {
      const text = comps.join('/');
      const regex = compilePattern(text, `${label(spec)} source ${JSON.stringify(what)}`);
      const depth = text.includes('**') ? Infinity : comps.length;
      rels.push(...(await globMatches(root.dir, root.ignore, regex, depth)));
      if (rels.length === 0) unmatched.push(what);
    } else {
      rels.push(comps.join('/'));
    }
    for (const rel of rels) {
      const notFound = (): NotFoundError => new NotFoundError(`${label(spec)} source ${JSON.stringify(what)}: not found in ${where}`);
      // The file may be there but hidden: say which ignore file hides it.
      const ignoredBy = (): NotFoundError =>
        new NotFoundError(`${label(spec)} source ${JSON.stringify(what)}: not found in ${where}: it is excluded by ${ignoreName(root.ignore)}`);
      if (rel !== '' && root.ignore?.ignored(rel, false) && !(await isDirWithExceptions(root, rel))) {
        throw (await statFollowed(root.dir, rel)) ? ignoredBy() : notFound();
      }
      const found = await statFollowed(root.dir, rel);
      if (!found) throw notFound();
      // A symlink may lead to something the ignore file hides: that does not exist either.
      const real = toRel(root.dir, found.host);
      if (real !== rel && real !== '' && root.ignore?.ignored(real, found.st.isDirectory())) throw ignoredBy();
      matched.push({ what, rel, parentsRel: dropComponents(rel, pivot), host: found.host, st: found.st });
    }
  }
  if (matched.length === 0 && unmatched.length > 0) {
    const list = unmatched.map((w) => JSON.stringify(w)).join(', ');
    throw new NotFoundError(`${label(spec)} ${unmatched.length === 1 ? 'source' : 'sources'} ${list}: no file in ${where} matches`);
  }
  return matched;
}

/** The ignore file's name for messages (`.dockerignore` when it came from one). */
function ignoreName(ignore: IgnoreMatcher | undefined): string {
  const src = ignore?.source;
  if (!src) return 'the ignore file';
  return src.includes('/') ? `${src.slice(src.lastIndexOf('/') + 1)} (${src})` : src;
}

async function isDirWithExceptions(root: CopyRoot, rel: string): Promise<boolean> {
  if (!root.ignore?.hasExceptions) return false;
  return (await stat(`${root.dir}/${rel}`).catch(() => undefined))?.isDirectory() ?? false;
}

/** Cleans a destination against the workdir; `..` stops at `/`. Says whether the syntax asks for a directory. */
export function destinationPath(spec: CopySpec): { comps: string[]; dirSyntax: boolean } {
  const raw = spec.dest;
  if (raw === '') throw new InvalidInputError(`${label(spec)} needs a destination`);
  const dirSyntax = raw.endsWith('/') || raw === '.' || raw.endsWith('/.') || raw === '..' || raw.endsWith('/..');
  const abs = raw.startsWith('/') ? raw : posix.join(spec.workdir || '/', raw);
  const comps = posix
    .normalize(`/${abs}`)
    .split('/')
    .filter((p) => p !== '' && p !== '.');
  return { comps, dirSyntax };
}

/** Exclusion from `--exclude`: matched against the path inside the source and the root-relative path. */
export function excludeMatcher(spec: CopySpec): ((inSource: string, inRoot: string) => boolean) | undefined {
  if (!spec.exclude?.length) return undefined;
  const m = ignoreFromLines(spec.exclude, `${label(spec)} --exclude`);
  return (inSource, inRoot) => (inSource !== '' && m.ignored(inSource, false)) || (inRoot !== '' && m.ignored(inRoot, false));
}

/** Ownership and mode a copied entry gets. */
export function restamp(e: LayerEntry, st: Stats, root: CopyRoot, spec: CopySpec): LayerEntry {
  const owner = spec.chown ?? (root.preserveOwnership ? { uid: st.uid, gid: st.gid } : { uid: 0, gid: 0 });
  const mode = spec.chmod !== undefined && e.type !== 'symlink' ? spec.chmod & 0o7777 : e.mode;
  return { ...e, uid: owner.uid, gid: owner.gid, mode };
}

/** Files stat'ed at once by lstatAll: enough to keep libuv's pool busy. */
const STAT_BATCH = 64;

/** lstat of every path, in the same order, several in flight. */
export async function lstatAll(paths: readonly string[]): Promise<Stats[]> {
  const out: Stats[] = new Array<Stats>(paths.length);
  for (let i = 0; i < paths.length; i += STAT_BATCH) {
    const batch = paths.slice(i, i + STAT_BATCH);
    const got = await Promise.all(batch.map((p) => lstat(p)));
    for (const [j, st] of got.entries()) out[i + j] = st;
  }
  return out;
}

/**
 * Walks a source directory (not following symlinks) and calls `visit` for every entry below it that
 * neither the ignore file nor `--exclude` hides, with its path relative to the directory. An ignored
 * directory is still entered when the ignore file has exceptions; it is then reported only if
 * something inside it is.
 */
export async function walkSource(
  hostDir: string,
  rootRel: string | undefined,
  ignore: IgnoreMatcher | undefined,
  exclude: ((inSource: string, inRoot: string) => boolean) | undefined,
  visit: (rel: string, host: string, st: Stats) => Promise<void>,
): Promise<number> {
  const walk = async (rel: string): Promise<number> => {
    let count = 0;
    const names = (await readdir(rel === '' ? hostDir : `${hostDir}/${rel}`)).sort();
    // A directory's entries are stat'ed together (one round trip to libuv's pool per file, one
    // after the other, is most of a walk over thousands of small files), then visited in order.
    const stats = await lstatAll(names.map((name) => `${hostDir}/${rel === '' ? name : `${rel}/${name}`}`));
    for (const [i, name] of names.entries()) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const host = `${hostDir}/${r}`;
      const st = stats[i]!;
      const inRoot = rootRel === undefined ? '' : rootRel === '' ? r : `${rootRel}/${r}`;
      if (exclude?.(r, inRoot)) continue;
      const hidden = rootRel !== undefined && (ignore?.ignored(inRoot, st.isDirectory()) ?? false);
      if (hidden && !(st.isDirectory() && ignore?.hasExceptions)) continue;
      if (hidden) {
        // Only there for a re-included descendant: visit the directory after we know.
        const inner = await walk(r);
        if (inner > 0) {
          await visit(r, host, st);
          count += inner + 1;
        }
        continue;
      }
      await visit(r, host, st);
      count++;
      if (st.isDirectory()) count += await walk(r);
    }
    return count;
  };
  return walk('');
}
