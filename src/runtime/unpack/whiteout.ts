import { lstat, readdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UnsafeLayerEntryError } from './errors.js';
import { resolveInRoot, resolveParentInRoot } from './rootpath.js';

/** OCI image spec, layer.md "Whiteouts". */
export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_WHITEOUT = '.wh..wh..opq';
/** aufs bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`) that old Docker layers carry; never content. */
export const AUFS_META_PREFIX = '.wh..wh.';

export type Whiteout = { kind: 'opaque'; dir: string[] } | { kind: 'whiteout'; dir: string[]; name: string } | { kind: 'aufs-metadata' };

/**
 * Recognises whiteout entries by their cleaned path. A whiteout is never written to disk; one whose
 * target is `.`, `..` or empty would delete the directory holding it (or its parent), so it is refused.
 */
export function classifyWhiteout(entryName: string, components: readonly string[]): Whiteout | undefined {
  if (components.length === 0) return undefined;
  if (components[0].startsWith(AUFS_META_PREFIX) && !(components.length === 1 && components[0] === OPAQUE_WHITEOUT)) {
    return { kind: 'aufs-metadata' };
  }
  const base = components[components.length - 1];
  if (!base.startsWith(WHITEOUT_PREFIX)) return undefined;
  const dir = components.slice(0, -1);
  if (base === OPAQUE_WHITEOUT) return { kind: 'opaque', dir };
  if (base.startsWith(AUFS_META_PREFIX)) return { kind: 'aufs-metadata' };
  const name = base.slice(WHITEOUT_PREFIX.length);
  if (name === '' || name === '.' || name === '..') {
    throw new UnsafeLayerEntryError(entryName, `whiteout of ${JSON.stringify(name)} would delete a directory outside its own`);
  }
  return { kind: 'whiteout', dir, name };
}

/**
 * Remembers every path this layer put on disk, with all its ancestors, so whiteouts can tell lower
 * content (which they delete) from this layer's own (which the spec says they must not touch, even
 * when the marker comes later in the tar than the entries next to it).
 */
export class LayerPaths {
  readonly #root: string;
  readonly #written = new Set<string>();

  constructor(root: string) {
    this.#root = root;
  }

  markWritten(path: string): void {
    // Ancestors are always added with a path, so the walk stops at the first one already known.
    for (let p = path; p !== this.#root && p.length > this.#root.length && !this.#written.has(p); p = dirname(p)) {
      this.#written.add(p);
    }
  }

  /**
   * Deletes what lower layers have at `path`: all of it if this layer never wrote there, otherwise
   * (a directory this layer also populated) just the lower children, recursively.
   */
  async removeLower(path: string): Promise<void> {
    let isDir: boolean;
    try {
      isDir = (await lstat(path)).isDirectory();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
      throw err;
    }
    if (!this.#written.has(path)) {
      // fs.rm works on lstat: a symlink is unlinked, never followed.
      await rm(path, { recursive: true, force: true });
      return;
    }
    if (!isDir) return;
    for (const child of await readdir(path)) await this.removeLower(`${path}/${child}`);
  }

  /** Applies one whiteout or opaque marker, resolving its directory inside the root. */
  async apply(root: string, whiteout: Exclude<Whiteout, { kind: 'aufs-metadata' }>): Promise<void> {
    if (whiteout.kind === 'whiteout') {
      const { path } = await resolveParentInRoot(root, [...whiteout.dir, whiteout.name]);
      await this.removeLower(path);
      return;
    }
    const dir = await resolveInRoot(root, whiteout.dir.join('/'));
    let isDir: boolean;
    try {
      isDir = (await lstat(dir)).isDirectory();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
      throw err;
    }
    if (!isDir) return;
    for (const child of await readdir(dir)) await this.removeLower(dir === '/' ? `/${child}` : `${dir}/${child}`);
  }
}
