import { randomBytes } from 'node:crypto';
import { chmod, chown, lstat, mkdir, realpath, rm, utimes } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { resolveInRoot } from '../../runtime/unpack/index.js';
import { cacheKey } from '../cache/key.js';
import { historyText } from './metadata.js';
import type { BuildRun } from './steps.js';
import { topChain, withLayer, type BuiltLayer, type StageState } from './state.js';
import type { WorkdirInstruction } from '../containerfile/index.js';

/**
 * WORKDIR creates its directory (root-owned, 0755, as buildah does) when the stage's filesystem
 * lacks it; that directory is the step's layer. `state` already has the new WorkingDir.
 */
export async function workdirStep(
  run: BuildRun,
  before: StageState,
  state: StageState,
  inst: WorkdirInstruction,
): Promise<{ state: StageState; cached: boolean; layer: BuiltLayer | undefined }> {
  const dir = state.config.WorkingDir || '/';
  const history = run.history(historyText(inst, before.config));
  if (dir === '/') return { state: withLayer(state, undefined, history), cached: false, layer: undefined };
  const key = cacheKey(topChain(state), 'WORKDIR', { dir, timestamp: run.opts.timestamp ?? null });
  const hit = await run.cached(key);
  if (hit) return { state: withLayer(state, hit.layer, history), cached: true, layer: hit.layer };

  const rootfs = await run.rootfs(state);
  const present = await lstat(await resolveInRoot(rootfs, dir)).then(
    () => true,
    () => false,
  );
  let layer: BuiltLayer | undefined;
  if (!present) {
    // The missing directory, laid out as an overlay upper dir would hold it.
    const upper = join(run.workDir, `workdir-${randomBytes(6).toString('hex')}`);
    // Where the directory really goes: symlinks among its existing parents are followed in the rootfs.
    const real = relative(await realpath(rootfs), await resolveInRoot(rootfs, dir))
      .split(sep)
      .join('/');
    await mkdir(join(upper, real), { recursive: true, mode: 0o755 });
    await mirrorParents(rootfs, upper, real);
    const { upperToLayer } = await import('../layers/diff.js');
    try {
      layer = await run.adopt(await upperToLayer(upper, run.layerOptions()));
    } finally {
      await rm(upper, { recursive: true, force: true });
    }
  }
  await run.remember(key, layer);
  return { state: withLayer(state, layer, history), cached: false, layer };
}

/**
 * The fake upper directory holds every component of the new path; those the stage already has must
 * look as they do there (as overlayfs copies a directory up with its metadata), or the layer would
 * reset, say, /tmp from 1777 to 0755. New ones are root's, 0755. Deepest first, so setting a
 * child's times does not disturb its parent's.
 */
async function mirrorParents(rootfs: string, upper: string, dir: string): Promise<void> {
  const comps = dir.split('/').filter(Boolean);
  for (let i = comps.length; i >= 1; i--) {
    const rel = comps.slice(0, i).join('/');
    const here = join(upper, rel);
    const existing = await lstat(await resolveInRoot(rootfs, `/${rel}`)).catch(() => undefined);
    if (existing?.isDirectory()) {
      await chown(here, existing.uid, existing.gid);
      await chmod(here, existing.mode & 0o7777);
      await utimes(here, existing.atime, existing.mtime);
    } else {
      await chmod(here, 0o755);
    }
  }
}
