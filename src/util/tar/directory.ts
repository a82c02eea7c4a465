import { createReadStream, type Stats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidInputError } from '../errors.js';
import type { TarWriter } from './write.js';

/** How a directory tree becomes tar entries (see addDirectory). */
export interface AddDirectoryOptions {
  /**
   * Whether a path (relative, `/`-separated) is left out: `skip` leaves it (and, for a directory,
   * everything below) out; `walk` writes no entry for a directory but still looks below it (for
   * exceptions that re-include files). Default: everything is included.
   */
  exclude?: (relPath: string, isDir: boolean) => 'skip' | 'walk' | false;
  /** A file with several links is written once and linked after (`link` entries). Default false. */
  hardlinks?: boolean;
  /** Sockets, devices and fifos: `refuse` (an InvalidInputError naming the path) or `skip`. */
  special: 'refuse' | 'skip';
  /** mtime for every entry (reproducible layers); default: each file's own. */
  mtime?: Date;
  /** Owner written for every entry; default 0:0. */
  uid?: number;
  gid?: number;
  signal?: AbortSignal;
}

/**
 * Writes the tree below `root` (not `root` itself) into `tar`: names sorted at every level (the same
 * tree gives the same bytes), symlinks as symlinks, file contents streamed from disk one at a time,
 * modes as they are. Resolves with the number of regular files written.
 */
export async function addDirectory(tar: TarWriter, root: string, opts: AddDirectoryOptions): Promise<number> {
  const seen = new Map<string, string>();
  let files = 0;
  const walk = async (abs: string, rel: string): Promise<void> => {
    for (const name of (await readdir(abs)).sort()) {
      opts.signal?.throwIfAborted();
      const path = join(abs, name);
      const relPath = rel ? `${rel}/${name}` : name;
      const st: Stats = await lstat(path);
      const excluded = opts.exclude?.(relPath, st.isDirectory()) ?? false;
      if (excluded === 'skip' || (excluded === 'walk' && !st.isDirectory())) continue;
      const base = { name: relPath, mode: st.mode & 0o7777, mtime: opts.mtime ?? st.mtime, uid: opts.uid ?? 0, gid: opts.gid ?? 0 };
      if (st.isDirectory()) {
        if (excluded !== 'walk') await tar.add({ ...base, type: 'directory' });
        await walk(path, relPath);
      } else if (st.isSymbolicLink()) {
        await tar.add({ ...base, type: 'symlink', linkname: await readlink(path) });
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = opts.hardlinks && st.nlink > 1 ? seen.get(key) : undefined;
        if (first !== undefined) {
          await tar.add({ ...base, type: 'link', linkname: first });
          continue;
        }
        if (opts.hardlinks && st.nlink > 1) seen.set(key, relPath);
        files++;
        await tar.add({ ...base, type: 'file', size: st.size }, createReadStream(path));
      } else if (opts.special === 'refuse') {
        throw new InvalidInputError(`${path}: cannot import a ${st.isSocket() ? 'socket' : 'device or fifo'}`);
      }
    }
  };
  await walk(root, '');
  return files;
}
