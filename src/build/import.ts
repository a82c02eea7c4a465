import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGzip, createGunzip } from 'node:zlib';
import type { ContainerConfig, ImageConfig } from '../oci/config.js';
import { VerifyingStream, type Digest } from '../oci/digest.js';
import { OciLayout } from '../oci/layout.js';
import { encodeManifest, type ImageManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatype.js';
import { hostPlatform, type Platform } from '../oci/platform.js';
import { copyReference, type CopyResult } from '../copy/copy.js';
import { parseOciReference } from '../transports/oci.js';
import type { TransportContext, TransportReference } from '../transports/types.js';
import { InvalidInputError } from '../util/errors.js';
import { fileCompression } from '../util/tar/compression.js';
import { tarDirectory } from './rootfs-tar.js';

export interface ImportOptions {
  config?: ContainerConfig;
  platform?: Platform;
  /** Image creation time and every entry's mtime (SOURCE_DATE_EPOCH): same input, same digest. */
  created?: Date;
  message?: string;
  destContext?: TransportContext;
  signal?: AbortSignal;
}

/**
 * Makes a one-layer image from a root filesystem, as `podman import` does: a directory (tarred in
 * sorted order) or a tarball (plain or gzip). The tar is hashed as it streams (the diffID) and
 * gzip-compressed into a scratch OCI layout, then copied to the destination with the copy engine, so
 * every transport works as a target and the destination commits only a complete image.
 */
export async function importRootfs(source: string, dest: TransportReference, opts: ImportOptions = {}): Promise<CopyResult> {
  const st = await stat(source).catch(() => {
    throw new InvalidInputError(`${source}: no such file or directory`);
  });
  const scratch = await mkdtemp(join(tmpdir(), 'stevedore-import-'));
  try {
    const layout = await OciLayout.open(scratch, { create: true });
    const created = opts.created ?? new Date();
    let tar: Readable;
    if (st.isDirectory()) tar = tarDirectory(source, opts.created ? { mtime: opts.created } : {});
    else if ((await fileCompression(source)) === 'gzip') tar = createReadStream(source).pipe(createGunzip());
    else tar = createReadStream(source);
    const diff = new VerifyingStream({});
    tar.on('error', (err) => diff.destroy(err));
    const layer = await layout.writeBlob(tar.pipe(diff).pipe(createGzip({ level: 6 })), undefined, opts.signal);
    const diffID = diff.digest as Digest;
    const platform = opts.platform ?? hostPlatform();
    const config: ImageConfig = {
      created: created.toISOString(),
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: opts.config ?? {},
      rootfs: { type: 'layers', diff_ids: [diffID] },
      history: [{ created: created.toISOString(), created_by: opts.message ?? `stevedore import ${st.isDirectory() ? 'directory' : 'tarball'}` }],
    };
    const configBytes = Buffer.from(JSON.stringify(config));
    const configDigest = await layout.writeBlobBytes(configBytes);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: configDigest, size: configBytes.length },
      layers: [{ mediaType: MediaType.OciLayerGzip, digest: layer.digest, size: layer.size }],
    };
    const raw = encodeManifest(manifest);
    await layout.writeBlobBytes(raw.bytes, raw.digest);
    await layout.setRef({ mediaType: raw.mediaType, digest: raw.digest, size: raw.bytes.length }, 'import');
    return await copyReference(parseOciReference(`${scratch}:import`), dest, { destContext: opts.destContext, signal: opts.signal });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
