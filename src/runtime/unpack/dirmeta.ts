import { applyToHandle, openDirectoryNoFollow, type EntryMeta, type OwnershipPolicy } from './metadata.js';
import { resolveParentInRoot } from './rootpath.js';

interface PendingDir {
  entryName: string;
  components: string[];
  meta: EntryMeta;
}

/**
 * Directory metadata is applied after the last entry: every child written into a directory bumps
 * its mtime, and a read-only directory mode would stop an unprivileged unpacker from filling it.
 */
export class DeferredDirectories {
  readonly #root: string;
  readonly #pending = new Map<string, PendingDir>();

  constructor(root: string) {
    this.#root = root;
  }

  record(path: string, entryName: string, components: string[], meta: EntryMeta): void {
    this.#pending.delete(path); // a repeated entry wins, as it would in tar order
    this.#pending.set(path, { entryName, components, meta });
  }

  /** A directory tree was replaced or deleted: its headers no longer describe anything on disk. */
  forgetTree(path: string): void {
    const prefix = `${path}/`;
    for (const key of this.#pending.keys()) {
      if (key === path || key.startsWith(prefix)) this.#pending.delete(key);
    }
  }

  async applyAll(policy: OwnershipPolicy, signal?: AbortSignal): Promise<void> {
    for (const [path, dir] of [...this.#pending].reverse()) {
      signal?.throwIfAborted();
      // Later entries may have swapped a parent for a symlink; the recorded host path must still be
      // what the entry's name resolves to, or the chmod would land somewhere the entry never named.
      if (dir.components.length > 0) {
        const again = await resolveParentInRoot(this.#root, dir.components);
        if (again.path !== path) continue;
      }
      let fh;
      try {
        fh = await openDirectoryNoFollow(path);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') continue; // replaced since
        throw err;
      }
      try {
        await applyToHandle(fh, dir.entryName, dir.meta, policy);
      } finally {
        await fh.close();
      }
    }
  }
}
