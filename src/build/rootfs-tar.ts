import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pack as tarPack, type Header, type Pack } from 'tar-stream';
import { InvalidInputError } from '../util/errors.js';

export interface RootfsTarOptions {
  /** mtime for every entry (reproducible layers); default: each file's own. */
  mtime?: Date;
  /** Owner written for every entry; default 0:0, as `podman import` records a rootfs. */
  uid?: number;
  gid?: number;
}

async function addEntry(pack: Pack, header: Partial<Header>, body?: Readable): Promise<void> {
  if (!body) {
    await new Promise<void>((resolve, reject) => pack.entry(header as Header, '', (err) => (err ? reject(err) : resolve())));
    return;
  }
  await pipeline(body, pack.entry(header as Header) as unknown as Writable);
}

/**
 * Streams a directory as a layer tar: entries in sorted order (the same tree gives the same bytes),
 * hardlinks kept as links, file contents streamed from disk one at a time. Sockets and devices are
 * refused, since a rootless import could not reproduce them faithfully.
 */
export function tarDirectory(root: string, opts: RootfsTarOptions = {}): Readable {
  const pack = tarPack();
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
        await addEntry(pack, { ...base, name: `${rel}/`, type: 'directory' });
        await walk(path);
      } else if (st.isSymbolicLink()) {
        await addEntry(pack, { ...base, type: 'symlink', linkname: await readlink(path) });
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? seen.get(key) : undefined;
        if (first) {
          await addEntry(pack, { ...base, type: 'link', linkname: first });
        } else {
          if (st.nlink > 1) seen.set(key, rel);
          await addEntry(pack, { ...base, type: 'file', size: st.size }, createReadStream(path));
        }
      } else {
        throw new InvalidInputError(`${path}: cannot import a ${st.isSocket() ? 'socket' : 'device or fifo'}`);
      }
    }
  };
  walk(root).then(
    () => pack.finalize(),
    (err) => pack.destroy(err as Error),
  );
  return pack as unknown as Readable;
}
