/**
 * Test images made at run time: a hand-built OCI image layout (one gzip tar layer, a config, a
 * manifest, index.json) written without any of Stevedore's own code, so tests of `src/` compare
 * against an independent implementation. Layers are streamed to disk, so big random layers
 * (e.g. 64 MiB) cost no memory.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';

export interface LayerFile {
  path: string;
  /** File content; use `randomBytes` for big incompressible content instead. */
  content?: string | Buffer;
  /** Streams this many random bytes as the content (ignored if `content` is set). */
  randomBytes?: number;
  mode?: number;
}

export interface TestImageOptions {
  /** Tag in index.json (`org.opencontainers.image.ref.name`); default 'latest'. */
  tag?: string;
  /** Files in the single layer; default one small text file unique to this call. */
  files?: LayerFile[];
  architecture?: string;
  os?: string;
}

export interface TestImage {
  layoutDir: string;
  tag: string;
  /** `oci:DIR:TAG`, ready for skopeo. */
  ociRef: string;
  manifestDigest: string;
  manifestSize: number;
  manifest: Record<string, unknown>;
  configDigest: string;
  layerDigest: string;
  layerSize: number;
  diffId: string;
}

const FIXED_MTIME = new Date('2024-01-01T00:00:00Z');

/** Writes a one-layer OCI image layout into `layoutDir` (created if needed). */
export async function writeTestImageLayout(layoutDir: string, opts: TestImageOptions = {}): Promise<TestImage> {
  const tag = opts.tag ?? 'latest';
  const blobs = join(layoutDir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const files = opts.files ?? [{ path: 'hello.txt', content: `hello from stevedore ${randomBytes(8).toString('hex')}\n` }];

  // Layer: tar → (diffID hash) → gzip → (digest hash + size) → temp file, renamed to its digest.
  const pack = tar.pack();
  const diffHash = new HashTap();
  const blobHash = new HashTap();
  const tmpLayer = join(blobs, `.layer-${randomBytes(6).toString('hex')}`);
  const writing = pipeline(pack, diffHash, createGzip({ level: 6 }), blobHash, createWriteStream(tmpLayer));
  const dirs = new Set<string>();
  for (const f of files) {
    const parts = f.path.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (dirs.has(d)) continue;
      dirs.add(d);
      await entry(pack, { name: `${d}/`, type: 'directory', mode: 0o755, mtime: FIXED_MTIME });
    }
    if (f.content !== undefined) {
      const data = Buffer.from(f.content);
      await entry(pack, { name: f.path, size: data.length, mode: f.mode ?? 0o644, mtime: FIXED_MTIME }, data);
    } else {
      await streamRandomEntry(pack, f.path, f.randomBytes ?? 0, f.mode ?? 0o644);
    }
  }
  pack.finalize();
  await writing;
  const layerDigest = `sha256:${blobHash.hex()}`;
  const diffId = `sha256:${diffHash.hex()}`;
  await rename(tmpLayer, join(blobs, blobHash.hex()));

  const config = {
    architecture: opts.architecture ?? 'amd64',
    os: opts.os ?? 'linux',
    created: FIXED_MTIME.toISOString(),
    config: { Cmd: ['/bin/sh'], Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created: FIXED_MTIME.toISOString(), created_by: 'stevedore test harness' }],
  };
  const configDesc = await writeBlob(blobs, JSON.stringify(config));

  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDesc.digest, size: configDesc.size },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: blobHash.size }],
  };
  const manifestDesc = await writeBlob(blobs, JSON.stringify(manifest));

  await writeFile(join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        mediaType: manifest.mediaType,
        digest: manifestDesc.digest,
        size: manifestDesc.size,
        annotations: { 'org.opencontainers.image.ref.name': tag },
        platform: { architecture: config.architecture, os: config.os },
      },
    ],
  };
  await writeFile(join(layoutDir, 'index.json'), JSON.stringify(index));

  return {
    layoutDir,
    tag,
    ociRef: `oci:${layoutDir}:${tag}`,
    manifestDigest: manifestDesc.digest,
    manifestSize: manifestDesc.size,
    manifest,
    configDigest: configDesc.digest,
    layerDigest,
    layerSize: blobHash.size,
    diffId,
  };
}

async function writeBlob(blobs: string, content: string): Promise<{ digest: string; size: number }> {
  const data = Buffer.from(content);
  const hex = createHash('sha256').update(data).digest('hex');
  await writeFile(join(blobs, hex), data);
  return { digest: `sha256:${hex}`, size: data.length };
}

function entry(pack: tar.Pack, header: Parameters<tar.Pack['entry']>[0], data?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(header, data ?? '', (err) => (err ? reject(err) : resolve()));
  });
}

/** A tar entry of `size` random bytes, generated 1 MiB at a time with backpressure. */
async function streamRandomEntry(pack: tar.Pack, name: string, size: number, mode: number): Promise<void> {
  const src = new PassThrough();
  const done = new Promise<void>((resolve, reject) => {
    const sink = pack.entry({ name, size, mode, mtime: FIXED_MTIME }, (err) => (err ? reject(err) : resolve()));
    src.pipe(sink);
  });
  let left = size;
  while (left > 0) {
    const n = Math.min(left, 1 << 20);
    left -= n;
    if (!src.write(randomBytes(n))) await new Promise((r) => src.once('drain', r));
  }
  src.end();
  await done;
}

/** Pass-through that hashes (sha256) and counts what flows by. */
class HashTap extends Transform {
  readonly #hash = createHash('sha256');
  #hex: string | undefined;
  size = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }
  hex(): string {
    this.#hex ??= this.#hash.digest('hex');
    return this.#hex;
  }
}
