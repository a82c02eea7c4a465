import type { Stats } from 'node:fs';
import { readlink } from 'node:fs/promises';
import type { LayerEntry } from './entry.js';

/** What changes whenever a file's content may have: inode, size, mtime and ctime. */
export function sourceIdentity(st: Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

/**
 * Describes what is at `hostPath` (already lstat'ed) as a layer entry named `name`. Sockets have no
 * tar form and are left out (undefined), as Docker and BuildKit do.
 */
export async function entryFromStat(name: string, hostPath: string, st: Stats): Promise<LayerEntry | undefined> {
  const base = { name, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000) };
  if (st.isDirectory()) return { ...base, type: 'directory' };
  if (st.isFile()) {
    return { ...base, type: 'file', source: hostPath, size: st.size, sourceId: sourceIdentity(st), ...(st.nlink > 1 ? { inode: `${st.dev}:${st.ino}` } : {}) };
  }
  if (st.isSymbolicLink()) return { ...base, type: 'symlink', linkname: await readlink(hostPath) };
  if (st.isCharacterDevice() || st.isBlockDevice()) {
    const rdev = st.rdev;
    // Linux's dev_t encoding (glibc's gnu_dev_major/minor).
    const major = ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
    const minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
    return { ...base, type: st.isCharacterDevice() ? 'character-device' : 'block-device', devmajor: major, devminor: minor };
  }
  if (st.isFIFO()) return { ...base, type: 'fifo' };
  return undefined;
}
