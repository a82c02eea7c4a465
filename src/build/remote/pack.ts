/**
 * Packs a build context directory into a gzip tar on disk, the one layer of a context artifact.
 * Entries are sorted (the same tree gives the same bytes, so an unchanged context has the same
 * digest and is not uploaded twice), owned by 0:0, and streamed one file at a time; the digests of
 * the compressed blob and of the tar inside it are computed while writing.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Digest } from '../../oci/digest.js';
import { InvalidInputError } from '../../util/errors.js';
import { addDirectory } from '../../util/tar/directory.js';
import { TarWriter } from '../../util/tar/write.js';

/** What to leave out (the shape of build/context's IgnoreMatcher: .containerignore rules). */
export interface ContextIgnore {
  ignored(relPath: string, isDir: boolean): boolean;
  /** With `!` exceptions, an ignored directory is still walked: a file below may be re-included. */
  readonly hasExceptions?: boolean;
}

export interface PackOptions {
  ignore?: ContextIgnore;
  /** Paths (context-relative) always included even when ignored, e.g. the Containerfile itself. */
  keep?: string[];
  signal?: AbortSignal;
}

export interface PackedContext {
  /** The gzip tar on disk. */
  path: string;
  /** sha256 of the gzip bytes (the blob digest). */
  digest: Digest;
  /** sha256 of the uncompressed tar (the layer's diffID). */
  diffID: Digest;
  size: number;
  files: number;
}

class Hasher extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

export async function packContext(dir: string, outPath: string, opts: PackOptions = {}): Promise<PackedContext> {
  const st = await lstat(dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new InvalidInputError(`build context ${dir} is not a directory`);
  const keep = new Set((opts.keep ?? []).map((p) => p.replace(/^\.\//, '')));
  const tar = new TarWriter();
  // An ignored directory walked for exceptions gets no entry of its own; its kept files imply it.
  // Sockets, fifos and devices have no place in a build context (Docker skips them too).
  const exclude = (relPath: string, isDir: boolean): 'skip' | 'walk' | false =>
    (opts.ignore?.ignored(relPath, isDir) ?? false) && !keep.has(relPath) ? (isDir && opts.ignore?.hasExceptions ? 'walk' : 'skip') : false;
  const tarHash = new Hasher();
  const gzHash = new Hasher();
  const writing = pipeline(tar.stream, tarHash, createGzip(), gzHash, createWriteStream(outPath, { mode: 0o600 }), {
    signal: opts.signal,
  });
  let files: number;
  try {
    files = await addDirectory(tar, dir, { exclude, special: 'skip', ...(opts.signal ? { signal: opts.signal } : {}) });
    tar.finalize();
  } catch (err) {
    tar.destroy(err as Error);
    await writing.catch(() => undefined);
    throw err;
  }
  await writing;
  return {
    path: outPath,
    digest: `sha256:${gzHash.hash.digest('hex')}`,
    diffID: `sha256:${tarHash.hash.digest('hex')}`,
    size: gzHash.bytes,
    files,
  };
}
