import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Descriptor } from '../../oci/descriptor.js';
import type { Digest } from '../../oci/digest.js';
import { StevedoreError } from '../../util/errors.js';
import { applyStagedLayer, stageLayer, type StagedLayer } from '../unpack/staged.js';
import type { IdMap, UnpackResult } from '../unpack/index.js';

/**
 * A layer staged for a snapshot: `<tmp>/stage/` holds its files, and `<tmp>` becomes the snapshot
 * directory once the layer is applied onto `<tmp>/rootfs`. Like every `.tmp-*` directory of the
 * store it is never used by a later run and goes at the next prune if the process dies.
 */
export interface StagedTemp {
  tmp: string;
  layer: Descriptor;
  staged: StagedLayer;
}

/**
 * Reads a layer stream into a new temp dir under `snapshotsDir`, checking its diffID against the
 * image config's (when the caller knows it already; otherwise the caller checks before applying).
 * The temp dir is removed on failure.
 */
export async function stageToTemp(
  snapshotsDir: string,
  stream: Readable,
  layer: Descriptor,
  diffID: Digest | undefined,
  signal?: AbortSignal,
): Promise<StagedTemp> {
  const tmp = join(snapshotsDir, `.tmp-${randomBytes(8).toString('hex')}`);
  try {
    await mkdir(tmp);
    await mkdir(join(tmp, 'stage'), { mode: 0o700 });
    // Every caller checks the diffID before the staged layer is applied (here, or in
    // ImageStore.snapshot() for a layer staged while it downloaded).
    const staged = await stageLayer(stream, join(tmp, 'stage'), { mediaType: layer.mediaType, signal });
    if (diffID !== undefined && staged.diffID !== diffID) {
      throw new StevedoreError('DIFFID_MISMATCH', `layer ${layer.digest}: diffID ${staged.diffID} differs from the config's ${diffID}`);
    }
    return { tmp, layer, staged };
  } catch (err) {
    stream.destroy();
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** Applies a staged layer onto `<tmp>/rootfs` (already made from the parent), then drops the staged names. */
export async function applyStagedTemp(t: StagedTemp, opts: { idMap?: IdMap; signal?: AbortSignal }): Promise<UnpackResult> {
  const result = await applyStagedLayer(join(t.tmp, 'rootfs'), t.staged, { ...(opts.idMap ? { idMap: opts.idMap } : {}), signal: opts.signal });
  await rm(join(t.tmp, 'stage'), { recursive: true, force: true });
  return result;
}
