import { lstat, readdir, rm, rmdir } from 'node:fs/promises';
import { join, posix } from 'node:path';

/** Paths runc may create in a container's rootfs for its own mounts. */
export const RUNTIME_MOUNT_POINTS: readonly string[] = ['/proc', '/sys', '/dev', '/etc/hosts', '/etc/hostname', '/etc/resolv.conf', '/run/secrets'];

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}

/**
 * Removes from a RUN's changes the mount points that exist only because the container had mounts
 * there (/proc, /etc/hosts, a cache target...): they were not created by the command, and buildah
 * and BuildKit leave them out of the layer. A path the lower filesystem already had is left alone,
 * and so is a mount point that holds anything (the command put it there through another path).
 */
export async function dropMountPoints(changed: string, lower: string, targets: readonly string[]): Promise<void> {
  for (const target of [...RUNTIME_MOUNT_POINTS, ...targets]) {
    const rel = posix.normalize(target).replace(/^\/+/, '');
    if (rel === '' || rel === '.') continue;
    if (await exists(join(lower, rel))) continue;
    const path = join(changed, rel);
    const st = await lstat(path).catch(() => undefined);
    if (!st) continue;
    if (st.isDirectory()) {
      // /dev holds the mount points of /dev/pts, /dev/shm...: all runtime-made, as is the dir itself.
      if (rel === 'dev' || (await readdir(path)).length === 0) await rm(path, { recursive: true, force: true });
      else continue;
    } else if (st.isFile() && st.size === 0) await rm(path, { force: true });
    else continue;
    // Parents that exist only to hold the mount point go too.
    let parent = posix.dirname(rel);
    while (parent !== '.' && parent !== '/' && !(await exists(join(lower, parent)))) {
      try {
        await rmdir(join(changed, parent));
      } catch {
        break;
      }
      parent = posix.dirname(parent);
    }
  }
}
