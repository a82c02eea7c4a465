/**
 * The agent's store must be reachable by the runs' user-namespace ids. runc mounts a run's root
 * filesystem (`<store>/containers/<id>/rootfs`) and its volumes from inside the run's user
 * namespace, whose ids are unprivileged ids of the node: neither the owner nor the group of the
 * directories above the store, so each of them needs the search bit for others (o+x). The store's
 * own directories are made so by the runtime (src/runtime/container.ts ensureSearchable); the
 * directories above it are the administrator's, which the agent never changes: it refuses to start
 * instead, naming the directory, rather than take runs that would all fail with runc's
 * "permission denied".
 */
import { realpath, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { IdRange } from '../runtime/idmap.js';
import { StevedoreError } from '../util/errors.js';

export class StoreUnreachableError extends StevedoreError {
  /** The directory the runs' ids cannot pass through. */
  readonly directory: string;
  constructor(message: string, directory: string) {
    super('AGENT_STORE_UNREACHABLE', message);
    this.directory = directory;
  }
}

/** The directories above `path` (an absolute, resolved path), from / down; `path` itself excluded. */
export function directoriesAbove(path: string): string[] {
  const out: string[] = [];
  for (let d = dirname(path); ; d = dirname(d)) {
    out.unshift(d);
    if (dirname(d) === d) return out;
  }
}

/**
 * Refuses a store the runs' ids could not reach: the first directory above the store's real path
 * without the search bit for others. `pool`: the ids the runs are given (named in the message).
 */
export async function assertStoreReachable(storeRoot: string, pool: readonly IdRange[]): Promise<void> {
  const real = await realpath(storeRoot);
  for (const dir of directoriesAbove(real)) {
    const st = await stat(dir);
    if ((st.mode & 0o001) !== 0) continue;
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
    const ids = pool.map((r) => `${r.start}-${r.start + r.count - 1}`).join(', ');
    throw new StoreUnreachableError(
      `the agent's store ${storeRoot}${real === storeRoot ? '' : ` (${real})`} is inside ${dir} (mode ${mode}, owner ${st.uid}:${st.gid}), ` +
        `which the runs' user-namespace ids (${ids}) may not pass through: runc could not mount any run's root filesystem. ` +
        `Give ${dir} the search bit for others (chmod o+x ${dir}, e.g. mode 0711: others may pass through, not list or read it), ` +
        `or choose a --root whose parent directories all have it (the default for root is /var/lib/stevedore)`,
      dir,
    );
  }
}
