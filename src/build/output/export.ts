import { cp, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { InvalidInputError } from '../../util/errors.js';
import { tempSibling } from '../../util/fs.js';
import { writeCopyLayer } from '../layers/copy.js';
import { copyOwners } from '../layers/owners.js';

/** `--output` (buildah's and BuildKit's): the target stage's files as a directory or a tar file. */
export interface RootfsExport {
  type: 'local' | 'tar';
  /** The directory (local: absent or empty) or the tar file to write. */
  dest: string;
}

/**
 * Writes a finished stage's filesystem out of the store. Both kinds are made beside the
 * destination and renamed into place, so an interrupted build leaves no half-written output; an
 * existing non-empty directory is refused rather than merged into.
 */
export async function exportRootfs(rootfs: string, out: RootfsExport, opts: { timestamp?: number } = {}): Promise<void> {
  await mkdir(dirname(out.dest), { recursive: true });
  const tmp = tempSibling(out.dest);
  try {
    if (out.type === 'local') {
      const existing = await readdir(out.dest).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw new InvalidInputError(`--output ${out.dest}: ${err.message}`);
      });
      if (existing && existing.length > 0) throw new InvalidInputError(`--output ${out.dest}: the directory is not empty`);
      await cp(rootfs, tmp, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
      if (process.getuid?.() === 0) await copyOwners(rootfs, tmp);
      if (existing) await rm(out.dest, { recursive: true });
      await rename(tmp, out.dest);
    } else {
      // The copy planner's tar of the whole tree: owners, modes, links and hard links as in the stage.
      // Written in a scratch directory beside the destination, so it is renamed into place, not copied.
      const layer = await writeCopyLayer(
        { dir: rootfs, preserveOwnership: true, what: 'the built image' },
        { sources: ['.'], dest: '/', workdir: '/' },
        { workDir: tmp, compress: false, ...(opts.timestamp !== undefined ? { timestamp: opts.timestamp } : {}) },
      );
      await rename(layer.path, out.dest);
      await rm(tmp, { recursive: true, force: true });
    }
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}
