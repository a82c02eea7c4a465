import { lchown, lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Gives every entry under `to` the owner of the same entry under `from`: fs.cp keeps modes and
 * times, not owners (a seeded cache mount, an `--output` directory).
 */
export async function copyOwners(from: string, to: string): Promise<void> {
  const st = await lstat(from);
  await lchown(to, st.uid, st.gid);
  if (!st.isDirectory()) return;
  for (const name of await readdir(from)) await copyOwners(join(from, name), join(to, name));
}
