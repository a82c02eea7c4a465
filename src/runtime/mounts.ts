/**
 * Host mounts made outside a container's own spec, with util-linux mount(8)/umount(8): the tmpfs
 * volumes the node agent prepares for a run (its Secrets and ConfigMaps), and undoing a container's
 * rootfs mount that its monitor did not live to undo.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** Whether `dir` is a mount point (listed in this process's mountinfo). */
async function isMountPoint(dir: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  // Field 5 is the mount point, with spaces etc. octal-escaped.
  const escaped = dir.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  return info.split('\n').some((l) => l.split(' ')[4] === escaped);
}

/** Unmounts everything mounted at `dir` (mounts may be stacked), lazily when busy; nothing when none is. */
export async function unmountAll(dir: string): Promise<void> {
  for (let i = 0; i < 8 && (await isMountPoint(dir)); i++) {
    await exec('umount', [dir]).catch(() => exec('umount', ['-l', dir]));
  }
}

/** Mounts a tmpfs of `sizeBytes` at `dir` (nosuid, nodev, noexec; mode 0755 unless given). */
export async function mountTmpfs(dir: string, o: { sizeBytes: number; mode?: number }): Promise<void> {
  const mode = (o.mode ?? 0o755).toString(8).padStart(4, '0');
  await exec('mount', ['-t', 'tmpfs', '-o', `size=${o.sizeBytes},mode=${mode},nosuid,nodev,noexec`, 'tmpfs', dir]);
}
