import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { InvalidInputError } from '../util/errors.js';
import { TarWriter } from '../util/tar/write.js';

export interface RootfsTarOptions {
  /** mtime for every entry (reproducible layers); default: each file's own. */
  mtime?: Date;
  /** Owner written for every entry; default 0:0, as `podman import` records a rootfs. */
  uid?: number;
  gid?: number;
}

/**
 * Streams a directory as a layer tar: entries in sorted order (the same tree gives the same bytes),
 * hardlinks kept as links, file contents streamed from disk one at a time. Sockets and devices are
 * refused, since a rootless import could not reproduce them faithfully.
 */
export function tarDirectory(root: string, opts: RootfsTarOptions = {}): Readable {
  const tar = new TarWriter();
  const seen = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    const names = (await readdir(dir)).sort();
    for (const name of names) {
      const path = join(dir, name);
      const rel = relative(root, path).split(sep).join('/');
      const st = await lstat(path);
      const base = {
        name: rel,
        mode: st.mode & 0o7777,
        mtime: opts.mtime ?? st.mtime,
        uid: opts.uid ?? 0,
        gid: opts.gid ?? 0,
      };
      if (st.isDirectory()) {
        await tar.add({ ...base, type: 'directory' });
        await walk(path);
      } else if (st.isSymbolicLink()) {
        await tar.add({ ...base, type: 'symlink', linkname: await readlink(path) });
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? seen.get(key) : undefined;
        if (first) {
          await tar.add({ ...base, type: 'link', linkname: first });
        } else {
          if (st.nlink > 1) seen.set(key, rel);
          await tar.add({ ...base, type: 'file', size: st.size }, createReadStream(path));
        }
      } else {
        throw new InvalidInputError(`${path}: cannot import a ${st.isSocket() ? 'socket' : 'device or fifo'}`);
      }
    }
  };
  walk(root).then(
    () => tar.finalize(),
    (err) => tar.destroy(err as Error),
  );
  return tar.stream;
}
