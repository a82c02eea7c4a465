import type { Readable } from 'node:stream';
import { addDirectory } from '../util/tar/directory.js';
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
  addDirectory(tar, root, { hardlinks: true, special: 'refuse', ...opts }).then(
    () => tar.finalize(),
    (err) => tar.destroy(err as Error),
  );
  return tar.stream;
}
