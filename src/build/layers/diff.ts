import type { BigIntStats, Stats } from 'node:fs';
import { lstat, readdir, readlink, realpath } from 'node:fs/promises';
import { InvalidInputError } from '../../util/errors.js';
import { fileContentHash } from './content-hash.js';
import { OPAQUE_MARKER, WHITEOUT_PREFIX, type LayerEntry } from './entry.js';
import { entryFromStat } from './fs-entry.js';
import type { LayerFile } from './layer-file.js';
import { opaqueDirectories } from './overlay-xattrs.js';
import { writeLayer } from './tar-writer.js';

export interface DiffLayerOptions {
  /** SOURCE_DATE_EPOCH in seconds: later mtimes are written as this. */
  timestamp?: number;
  /** Where the layer file goes. */
  workDir: string;
  /** See WriteLayerOptions: gzip level, or no compression at all. */
  gzipLevel?: number;
  compress?: boolean;
  signal?: AbortSignal;
}

const join2 = (rel: string, name: string): string => (rel === '' ? name : `${rel}/${name}`);

/** A whiteout entry: an empty regular file, mode 0, as Docker and containerd write them. */
function whiteout(dirRel: string, name: string, mtime: number): LayerEntry {
  return { name: join2(dirRel, `${WHITEOUT_PREFIX}${name}`), type: 'whiteout', mode: 0, uid: 0, gid: 0, mtime };
}

async function canonicalDir(path: string, what: string): Promise<string> {
  const real = await realpath(path).catch((err: NodeJS.ErrnoException) => {
    throw new InvalidInputError(`${what} ${path}: ${err.message}`);
  });
  if (!(await lstat(real)).isDirectory()) throw new InvalidInputError(`${what} ${path} is not a directory`);
  return real;
}

/**
 * Turns an overlayfs upper directory (what a RUN step changed) into an OCI layer: a character
 * device 0/0 is a deletion and becomes `.wh.<name>`; a directory marked opaque (`trusted.overlay.opaque`
 * or `user.overlay.opaque` = `y`) replaced the lower one wholesale and gets `.wh..wh..opq`; all else
 * is content. The overlay must be unmounted (or the container stopped) while this reads.
 */
export async function upperToLayer(upperDir: string, opts: DiffLayerOptions): Promise<LayerFile> {
  const upper = await canonicalDir(upperDir, 'overlay upper directory');
  const entries: LayerEntry[] = [];
  const dirs: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(rel === '' ? upper : `${upper}/${rel}`)).sort()) {
      opts.signal?.throwIfAborted();
      const r = join2(rel, name);
      const host = `${upper}/${r}`;
      const st = await lstat(host);
      if (st.isCharacterDevice() && st.rdev === 0) {
        entries.push(whiteout(rel, name, Math.floor(st.mtimeMs / 1000)));
        continue;
      }
      const e = await entryFromStat(r, host, st);
      if (e) entries.push(e);
      if (st.isDirectory()) {
        dirs.push(r);
        await walk(r);
      }
    }
  };
  await walk('');
  for (const d of await opaqueDirectories(upper, dirs, opts.signal)) {
    const st = await lstat(`${upper}/${d}`);
    entries.push({ name: `${d}/${OPAQUE_MARKER}`, type: 'whiteout', mode: 0, uid: 0, gid: 0, mtime: Math.floor(st.mtimeMs / 1000) });
  }
  return writeLayer(entries, opts);
}

type Kind = 'file' | 'directory' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket' | 'other';

function kind(st: Stats | BigIntStats): Kind {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  return 'other';
}

/** Whether a non-directory changed between the lower and the new tree. */
async function changed(lowerPath: string, newPath: string, l: BigIntStats, n: BigIntStats): Promise<boolean> {
  if (kind(l) !== kind(n)) return true;
  // The same inode (snapshots made by hardlinking the parent) is the same file.
  if (l.dev === n.dev && l.ino === n.ino) return false;
  if ((l.mode & 0o7777n) !== (n.mode & 0o7777n) || l.uid !== n.uid || l.gid !== n.gid) return true;
  if (n.isSymbolicLink()) return (await readlink(lowerPath)) !== (await readlink(newPath));
  if (n.isCharacterDevice() || n.isBlockDevice()) return l.rdev !== n.rdev;
  if (!n.isFile()) return l.mtimeNs !== n.mtimeNs;
  if (l.size !== n.size || l.mtimeNs !== n.mtimeNs) return true;
  // Same size and same mtime on another inode: only the content can tell (mtime granularity is coarse).
  const [lh, nh] = await Promise.all([fileContentHash(lowerPath, await lstat(lowerPath)), fileContentHash(newPath, await lstat(newPath))]);
  return lh !== nh;
}

/**
 * The layer that turns `lowerDir` into `newDir`, for when no overlay upper directory is available:
 * entries that are new or differ (type, mode, owner, size, mtime, link target, device, or content
 * when all else is equal) are written, with the directories above them; entries gone from the new
 * tree become whiteouts (one for a whole removed directory).
 */
export async function treeDiffLayer(lowerDir: string, newDir: string, opts: DiffLayerOptions): Promise<LayerFile> {
  const lower = await canonicalDir(lowerDir, 'lower directory');
  const upper = await canonicalDir(newDir, 'new directory');
  const entries: LayerEntry[] = [];
  const now = Math.floor(Date.now() / 1000);

  const addAll = async (rel: string): Promise<void> => {
    for (const name of (await readdir(`${upper}/${rel}`)).sort()) {
      const r = join2(rel, name);
      const st = await lstat(`${upper}/${r}`);
      const e = await entryFromStat(r, `${upper}/${r}`, st);
      if (e) entries.push(e);
      if (st.isDirectory()) await addAll(r);
    }
  };

  /** Diffs one directory present (as a directory) in both trees; says whether anything below changed. */
  const diffDir = async (rel: string): Promise<boolean> => {
    let any = false;
    const lowerNames = new Set(await readdir(rel === '' ? lower : `${lower}/${rel}`));
    const newNames = (await readdir(rel === '' ? upper : `${upper}/${rel}`)).sort();
    const inNew = new Set(newNames);
    for (const name of newNames) {
      opts.signal?.throwIfAborted();
      const r = join2(rel, name);
      const np = `${upper}/${r}`;
      const lp = `${lower}/${r}`;
      const n = await lstat(np, { bigint: true });
      const l = lowerNames.has(name) ? await lstat(lp, { bigint: true }) : undefined;
      const plain = (): Promise<Stats> => lstat(np);
      if (n.isDirectory()) {
        if (l?.isDirectory()) {
          const metaChanged = (l.mode & 0o7777n) !== (n.mode & 0o7777n) || l.uid !== n.uid || l.gid !== n.gid;
          const inner = await diffDir(r);
          if (metaChanged || inner) {
            const e = await entryFromStat(r, np, await plain());
            if (e) entries.push(e);
            any = true;
          }
        } else {
          // New, or replacing a non-directory: everything in it is new.
          const e = await entryFromStat(r, np, await plain());
          if (e) entries.push(e);
          await addAll(r);
          any = true;
        }
      } else if (!l || (await changed(lp, np, l, n))) {
        const e = await entryFromStat(r, np, await plain());
        if (e) {
          entries.push(e);
          any = true;
        }
      }
    }
    for (const name of [...lowerNames].sort()) {
      if (inNew.has(name)) continue;
      entries.push(whiteout(rel, name, opts.timestamp ?? now));
      any = true;
    }
    return any;
  };

  await diffDir('');
  return writeLayer(entries, opts);
}
