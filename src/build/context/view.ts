import { copyFile, link, mkdir, readlink, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { walkSource } from '../layers/copy-plan.js';
import type { IgnoreMatcher } from './ignore.js';

/**
 * A directory holding only what the ignore file lets through below `host` (a directory of the
 * context at `rootRel`): what BuildKit would have sent, so a `RUN --mount=type=bind` of the
 * context cannot read a file `.dockerignore` hides (an `.env`, a key). Files are hard links where
 * the file system allows, else copies; symlinks are recreated as they are; other kinds are left out.
 */
export async function ignoreFilteredView(host: string, rootRel: string, ignore: IgnoreMatcher, into: string): Promise<void> {
  await mkdir(into, { recursive: true });
  await walkSource(host, rootRel, ignore, undefined, async (rel, path, st) => {
    const target = join(into, rel);
    if (st.isDirectory()) {
      await mkdir(target, { recursive: true, mode: st.mode & 0o7777 });
      return;
    }
    // A directory shown only for a re-included file inside it is visited after that file.
    await mkdir(dirname(target), { recursive: true });
    if (st.isFile()) await link(path, target).catch(() => copyFile(path, target));
    else if (st.isSymbolicLink()) await symlink(await readlink(path), target);
  });
}
