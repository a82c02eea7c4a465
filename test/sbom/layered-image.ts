/**
 * Multi-layer test images made from real files of this machine (a dpkg database, copyright files,
 * Python metadata, node_modules, Go binaries built by the test), with whiteouts where a test wants a
 * later layer to delete something. Layers stream from disk through tar and gzip into an OCI layout;
 * every manifest and config is checked against the OCI schemas.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Transform, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import type { ImageConfig } from '../../src/oci/config.js';
import type { Descriptor } from '../../src/oci/descriptor.js';
import type { Digest } from '../../src/oci/digest.js';
import { OciLayout } from '../../src/oci/layout.js';
import { encodeManifest, type ImageManifest, type RawManifest } from '../../src/oci/manifest.js';
import { MediaType } from '../../src/oci/mediatype.js';
import { hostPlatform } from '../../src/oci/platform.js';
import { validateOci } from '../../hack/lib/harness/schema.js';

const TIME = new Date('2024-01-01T00:00:00Z');

export type LayerItem =
  /** A file of this machine copied to `path` in the image. */
  | { path: string; from: string; mode?: number }
  /** A file with the given content. */
  | { path: string; content: string | Buffer; mode?: number }
  | { path: string; dir: true }
  | { path: string; symlink: string }
  /** A whiteout of `path` (written as `.wh.<name>` in its directory). */
  | { path: string; whiteout: true }
  /** An opaque-directory marker in `path`. */
  | { path: string; opaque: true };

export interface BuiltImage {
  layoutDir: string;
  ref: string;
  ociRef: string;
  manifest: RawManifest;
  layers: Descriptor[];
}

class HashTap extends Transform {
  readonly #hash = createHash('sha256');
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#hash.update(chunk);
    cb(null, chunk);
  }
  digest(): Digest {
    return `sha256:${this.#hash.digest('hex')}`;
  }
}

async function entry(pack: tar.Pack, item: LayerItem): Promise<void> {
  const base = { uid: 0, gid: 0, mtime: TIME };
  const put = (h: Partial<tar.Header> & { name: string }, content?: string | Buffer): Promise<void> =>
    new Promise((resolve, reject) => pack.entry(h as tar.Header, content ?? '', (err) => (err ? reject(err) : resolve())));
  if ('dir' in item) return put({ ...base, name: `${item.path}/`, type: 'directory', mode: 0o755 });
  if ('symlink' in item) return put({ ...base, name: item.path, type: 'symlink', linkname: item.symlink, mode: 0o777 });
  if ('whiteout' in item) {
    const slash = item.path.lastIndexOf('/');
    return put({ ...base, name: `${item.path.slice(0, slash + 1)}.wh.${item.path.slice(slash + 1)}`, type: 'file', mode: 0o644 });
  }
  if ('opaque' in item) return put({ ...base, name: `${item.path}/.wh..wh..opq`, type: 'file', mode: 0o644 });
  if ('content' in item) return put({ ...base, name: item.path, type: 'file', mode: item.mode ?? 0o644 }, item.content);
  const st = await stat(item.from);
  const sink = pack.entry({ ...base, name: item.path, type: 'file', mode: item.mode ?? st.mode & 0o7777, size: st.size } as tar.Header);
  await pipeline(createReadStream(item.from), sink as unknown as Writable);
}

/** Writes an image of the given layers (bottom first) into `layoutDir` under `ref`. */
export async function buildLayeredImage(layoutDir: string, ref: string, layers: LayerItem[][]): Promise<BuiltImage> {
  const layout = await OciLayout.open(layoutDir, { create: true });
  const descs: Descriptor[] = [];
  const diffIds: Digest[] = [];
  for (const items of layers) {
    const pack = tar.pack();
    const tap = new HashTap();
    const gzip = createGzip({ level: 1 });
    const compressing = pipeline(pack, tap, gzip as unknown as Writable);
    const writing = layout.writeBlob(gzip);
    for (const item of items) await entry(pack, item);
    pack.finalize();
    const [, written] = await Promise.all([compressing, writing]);
    descs.push({ mediaType: MediaType.OciLayerGzip, digest: written.digest, size: written.size });
    diffIds.push(tap.digest());
  }
  const platform = hostPlatform();
  const config: ImageConfig = {
    created: TIME.toISOString(),
    architecture: platform.architecture,
    os: platform.os,
    config: { Env: ['PATH=/usr/bin:/bin'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: diffIds.map(() => ({ created: TIME.toISOString(), created_by: 'stevedore sbom test layer' })),
  };
  validateOci('config', config);
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = await layout.writeBlobBytes(configBytes);
  const doc: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: configDigest, size: configBytes.length },
    layers: descs,
  };
  validateOci('manifest', doc);
  const manifest = encodeManifest(doc);
  await layout.writeBlobBytes(manifest.bytes, manifest.digest);
  await layout.setRef({ mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.length }, ref);
  return { layoutDir, ref, ociRef: `oci:${layoutDir}:${ref}`, manifest, layers: descs };
}
