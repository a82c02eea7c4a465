import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Digest } from '../../oci/digest.js';
import { parseManifest } from '../../oci/manifest.js';
import { hostPlatform, platformMatches } from '../../oci/platform.js';
import type { ImageStore } from '../../runtime/store/index.js';
import { normaliseImageName } from '../../runtime/store/names.js';
import type { TransportContext } from '../../transports/types.js';
import { NotFoundError, StevedoreError } from '../../util/errors.js';

/** A base image's files cannot be read by the user the build runs as. */
export class BaseImageUnreadableError extends StevedoreError {
  constructor(message: string, cause?: unknown) {
    super('PERMISSION_DENIED', message, cause === undefined ? undefined : { cause });
  }
}

/**
 * Whether the store's copy of a base image named by a local transport (`oci:DIR:TAG`,
 * `oci-archive:`, `dir:`, `docker-archive:`) is stale: the image at that path now has another
 * digest (it was replaced, or another layout of the same directory name and tag was pulled
 * before). Such a source costs a file read to check, so `--pull missing` checks it on every build
 * and pulls again when it moved; a registry name is not checked (that is `--pull always`).
 * The digests compared are the host platform's image manifest's, as the store keeps it.
 */
export async function localBaseMoved(store: ImageStore, ref: string, opts: { context?: TransportContext; signal?: AbortSignal } = {}): Promise<boolean> {
  const { storeName, source } = normaliseImageName(ref);
  if (source.startsWith('docker://')) return false;
  const { parseImageName } = await import('../../transports/index.js');
  const reference = parseImageName(source);
  const path = (reference as { path?: string }).path;
  if (path !== undefined) await checkReadable(reference.transport === 'oci' ? join(path, 'index.json') : path);
  const have = await store.get(storeName).catch((err: unknown) => {
    if (err instanceof NotFoundError || (err as StevedoreError)?.code === 'IMAGE_UNAVAILABLE') return undefined;
    throw err;
  });
  if (!have) return false; // not in the store: it is pulled anyway
  // Anything else going wrong here (the path is gone): the store's copy is used, as before.
  const src = await reference.newSource(opts.context).catch(() => undefined);
  if (!src) return false;
  try {
    const top = await src.getManifest(undefined, opts.signal ? { signal: opts.signal } : {}).catch(() => undefined);
    if (!top) return false;
    let digest: Digest = top.digest;
    const parsed = parseManifest(top.bytes, top.mediaType);
    if (parsed.kind === 'index') {
      const host = hostPlatform();
      const child = parsed.index.manifests.find((m) => m.platform && platformMatches(m.platform, host));
      if (!child) return false; // the pull reports it
      digest = child.digest;
    }
    return digest !== have.digest;
  } finally {
    await src.close();
  }
}

/** Reads a file the pull will need, so a permission problem is reported as one, with its path. */
async function checkReadable(path: string): Promise<void> {
  try {
    const fh = await open(path, 'r');
    await fh.close();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') {
      const uid = process.getuid?.();
      throw new BaseImageUnreadableError(`${path}: permission denied (the build runs as uid ${uid ?? '?'}; make the layout readable to it)`, err);
    }
    // A missing file is the pull's to report.
  }
}
