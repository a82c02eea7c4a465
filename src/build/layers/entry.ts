/**
 * One entry of a layer the builder is about to write, described before any byte is written: the
 * whole list is planned (metadata only, never content), sorted, and then streamed.
 */
export type LayerEntryType = 'file' | 'directory' | 'symlink' | 'character-device' | 'block-device' | 'fifo' | 'whiteout';

export interface LayerEntry {
  /** Path inside the image, relative, `/`-separated, no leading or trailing slash. */
  name: string;
  type: LayerEntryType;
  /** Permission bits plus setuid/setgid/sticky (`mode & 0o7777`). */
  mode: number;
  uid: number;
  gid: number;
  /** Modification time in seconds since the epoch. */
  mtime: number;
  /** Files: where the content is read from, and how many bytes it has. */
  source?: string;
  size?: number;
  /** Symlinks: the target, written as is. */
  linkname?: string;
  /** Devices. */
  devmajor?: number;
  devminor?: number;
  /**
   * Files with more than one link: `dev:ino` of the source. Entries sharing a key become one file
   * and hardlinks to it (the first in the layer's order carries the content).
   */
  inode?: string;
  /**
   * Files: identity of the source when planned (`dev:ino:size:mtime:ctime`), so a later copy of it
   * (a snapshot made from the entries, see materialize.ts) can tell the file did not change since.
   */
  sourceId?: string;
}

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

/**
 * Layer order: component by component, so a directory always precedes what it holds, and the opaque
 * marker comes first among a directory's children (a reader that applies in order then clears the
 * lower content before this layer's own children arrive).
 */
export function compareEntryNames(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  const n = Math.min(pa.length, pb.length);
  for (let i = 0; i < n; i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === y) continue;
    if (x === OPAQUE_MARKER) return -1;
    if (y === OPAQUE_MARKER) return 1;
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}
