import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, realpath, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { unpackLayer } from '../../runtime/unpack/index.js';
import { InvalidInputError, NotFoundError, StevedoreError, errorMessage } from '../../util/errors.js';
import { rootLogger } from '../../util/log.js';
import { openArchive } from '../layers/archive.js';
import { ignoreFromLines, loadIgnore, type IgnoreMatcher } from './ignore.js';
import { fetchRemoteContext, redact, remoteContextOf } from './remote.js';

const log = rootLogger.child({ component: 'build-context' });

/** The files a build may read: a directory, and the ignore rules that hide some of them. */
export interface BuildContext {
  /** Canonical (symlink-free) absolute path of the context root. */
  dir: string;
  ignore: IgnoreMatcher;
  /** Removes what openContext made (the extracted tarball); a directory context is left alone. */
  cleanup(): Promise<void>;
  /** Fetched from a URL (Git or http): a relative `-f` is then inside the context. */
  remote?: boolean;
}

export interface OpenContextOptions {
  /** The Containerfile, for `<name>.containerignore`; relative paths are inside the context. */
  containerfile?: string;
  /** `--ignorefile`: this file's patterns instead of the context's .containerignore/.dockerignore. */
  ignoreFile?: string;
  /** Where `-` reads the tar from; process.stdin unless given. */
  stdin?: NodeJS.ReadableStream;
  /** Parent of the temp directory a tarball is extracted into; the OS temp dir unless given. */
  tmpDir?: string;
  signal?: AbortSignal;
}

/**
 * Extracts a context archive into a fresh directory with the layer unpacker's rules: every name and
 * symlink is kept inside the directory, no owner is applied, devices are skipped, size and entry
 * limits hold. gzip, zstd, bzip2 and xz archives are read as Docker reads them.
 */
async function extractContext(archive: string, into: string, what: string, signal?: AbortSignal): Promise<void> {
  try {
    await unpackLayer(into, await openArchive(archive), { rootless: true, ...(signal ? { signal } : {}) });
  } catch (err) {
    if (err instanceof Error && err.name === 'AbortError') throw err;
    throw new InvalidInputError(`build context ${what}: not a usable tar archive: ${errorMessage(err)}`, { cause: err });
  }
}

/**
 * Opens a build context: a directory (used in place), a `.tar`/`.tar.gz` file or `-` (a tar on
 * stdin), both extracted into a temp directory that `cleanup()` removes, or a URL (a Git
 * repository, or an http(s) tar archive: context/remote.ts), fetched into one.
 */
export async function openContext(spec: string, opts: OpenContextOptions = {}): Promise<BuildContext> {
  if (spec === '') throw new InvalidInputError('build context: empty path');
  const parent = opts.tmpDir ?? tmpdir();
  const remote = remoteContextOf(spec);
  if (remote) {
    const dir = await mkdtemp(join(parent, 'stevedore-context-'));
    const cleanup = (): Promise<void> => rm(dir, { recursive: true, force: true });
    try {
      const got = await fetchRemoteContext(remote, dir, opts.signal).catch((err: unknown) => {
        if (err instanceof Error && err.name === 'AbortError') throw err;
        if (err instanceof InvalidInputError) throw err;
        throw new StevedoreError('CONTEXT_UNREADABLE', `build context ${redact(spec)}: ${errorMessage(err)}`, { cause: err });
      });
      if (got.archive) {
        await mkdir(got.root);
        await extractContext(got.archive, got.root, redact(spec), opts.signal);
        await rm(dirname(got.archive), { recursive: true, force: true });
      }
      return { ...(await finish(got.root, opts, cleanup)), remote: true };
    } catch (err) {
      await cleanup();
      throw err;
    }
  }
  if (spec === '-') {
    const dir = await mkdtemp(join(parent, 'stevedore-context-'));
    const cleanup = (): Promise<void> => rm(dir, { recursive: true, force: true });
    try {
      // Spooled to disk first: the stream is read once, then unpacked like any context archive.
      const spool = join(dir, '.stdin.tar');
      const input = opts.stdin ?? process.stdin;
      await pipeline(input as Readable, createWriteStream(spool, { mode: 0o600 }), opts.signal ? { signal: opts.signal } : {});
      const root = join(dir, 'root');
      await mkdir(root);
      await extractContext(spool, root, 'from stdin', opts.signal);
      await rm(spool, { force: true });
      return await finish(root, opts, cleanup);
    } catch (err) {
      await cleanup();
      throw err;
    }
  }
  const path = resolve(spec);
  const st = await stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new NotFoundError(`build context ${spec}: no such file or directory`);
    throw new StevedoreError('CONTEXT_UNREADABLE', `build context ${spec}: ${err.message}`, { cause: err });
  });
  if (st.isDirectory()) return finish(await realpath(path), opts, async () => undefined);
  if (!st.isFile()) throw new InvalidInputError(`build context ${spec}: neither a directory nor a tar archive`);
  const dir = await mkdtemp(join(parent, 'stevedore-context-'));
  const cleanup = (): Promise<void> => rm(dir, { recursive: true, force: true });
  try {
    await extractContext(path, dir, spec, opts.signal);
    return await finish(dir, opts, cleanup);
  } catch (err) {
    await cleanup();
    throw err;
  }
}

async function finish(dir: string, opts: OpenContextOptions, cleanup: () => Promise<void>): Promise<BuildContext> {
  const canonical = await realpath(dir);
  const ignore = opts.ignoreFile !== undefined ? await ignoreFromFile(opts.ignoreFile) : await loadIgnore(canonical, opts.containerfile);
  log.debug({ dir: canonical, ignoreFile: ignore.source }, 'build context opened');
  return { dir: canonical, ignore, cleanup };
}

/** An ignore file named by `--ignorefile` (it must exist). */
async function ignoreFromFile(path: string): Promise<IgnoreMatcher> {
  const file = resolve(path);
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'ENOENT'
      ? new NotFoundError(`--ignorefile ${path}: no such file`)
      : new StevedoreError('CONTEXT_UNREADABLE', `--ignorefile ${path}: ${err.message}`, { cause: err });
  });
  return ignoreFromLines(text.split(/\r?\n/), file);
}
