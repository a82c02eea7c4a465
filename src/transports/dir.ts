import { mkdir, readdir } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/descriptor.js';
import { digestBytes, parseDigest, verifyBytes, type Digest } from '../oci/digest.js';
import { manifestBlobs, MAX_MANIFEST_BYTES, parseManifest, type RawManifest } from '../oci/manifest.js';
import { InvalidInputError, NotFoundError } from '../util/errors.js';
import { exists, writeFileAtomic } from '../util/fs.js';
import { checkIncomingManifest, hasFileOfSize, openVerified, readCapped, writeVerifiedFile } from './local-util.js';
import type { ImageDestination, ImageSource, OpOptions, PutManifestOptions, ReuseOptions, TransportContext, TransportReference } from './types.js';

/**
 * `dir:PATH` — containers/image's directory format: `manifest.json` (the top manifest), each blob
 * in a file named by its hex digest, child manifests of an index as `<hex>.manifest.json`, and a
 * `version` file. Non-sha256 digests are named `<alg>-<hex>`, as containers/image does.
 */

export const DIR_VERSION = 'Directory Transport Version: 1.1\n';

function digestFileStem(digest: Digest): string {
  const { algorithm, encoded } = parseDigest(digest);
  return algorithm === 'sha256' ? encoded : `${algorithm}-${encoded}`;
}

export function dirBlobPath(dir: string, digest: Digest): string {
  return join(dir, digestFileStem(digest));
}

/** The top manifest without a digest; a child manifest of an index with one. */
export function dirManifestPath(dir: string, digest?: Digest): string {
  return join(dir, digest ? `${digestFileStem(digest)}.manifest.json` : 'manifest.json');
}

export class DirReference implements TransportReference {
  readonly transport = 'dir';
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  toString(): string {
    return `dir:${this.path}`;
  }

  async newSource(_ctx?: TransportContext): Promise<ImageSource> {
    return DirSource.open(resolvePath(this.path), this.toString());
  }

  async newDestination(_ctx?: TransportContext): Promise<ImageDestination> {
    return DirDestination.open(resolvePath(this.path), this.toString());
  }
}

/** `rest` is everything after `dir:`; the whole of it is the path. */
export function parseDirReference(rest: string): DirReference {
  if (rest === '') throw new InvalidInputError('invalid dir reference "dir:": empty path');
  return new DirReference(rest);
}

export class DirSource implements ImageSource {
  readonly name: string;
  readonly path: string;
  /** The top manifest, read once: the directory does not record its digest, so it is computed. */
  readonly #top: RawManifest;

  private constructor(name: string, path: string, top: RawManifest) {
    this.name = name;
    this.path = path;
    this.#top = top;
  }

  static async open(path: string, name: string): Promise<DirSource> {
    const file = dirManifestPath(path);
    if (!(await exists(file))) throw new NotFoundError(`${name}: no manifest.json (not a dir: image)`);
    const bytes = await readCapped(file, MAX_MANIFEST_BYTES, `${name}: manifest.json`);
    const { mediaType } = parseManifest(bytes);
    return new DirSource(name, path, { bytes, mediaType, digest: digestBytes(bytes) });
  }

  async getManifest(digest?: Digest, _opts?: OpOptions): Promise<RawManifest> {
    if (digest === undefined || digest === this.#top.digest) return this.#top;
    const bytes = await readCapped(dirManifestPath(this.path, digest), MAX_MANIFEST_BYTES, `${this.name}: manifest ${digest}`);
    verifyBytes(`${this.name}: manifest ${digest}`, bytes, digest);
    return { bytes, mediaType: parseManifest(bytes).mediaType, digest };
  }

  async getBlob(desc: Descriptor, opts?: OpOptions): Promise<Readable> {
    return openVerified(dirBlobPath(this.path, desc.digest), desc, this.name, opts?.signal);
  }

  async close(): Promise<void> {}
}

/**
 * Writes a dir: image. Every file appears atomically (temp + rename, verified first) and
 * `manifest.json` is written last, on commit(). Unlike containers/image, which empties a reused
 * directory, blobs already there are kept so an interrupted copy resumes; a non-empty directory
 * that is not a dir: image is refused rather than mixed into.
 */
export class DirDestination implements ImageDestination {
  readonly name: string;
  readonly path: string;
  #pendingTop: RawManifest | undefined;

  private constructor(name: string, path: string) {
    this.name = name;
    this.path = path;
  }

  static async open(path: string, name: string): Promise<DirDestination> {
    await mkdir(path, { recursive: true });
    const entries = await readdir(path);
    if (entries.length > 0 && !entries.includes('version')) {
      throw new InvalidInputError(`${name}: ${path} is a non-empty directory that is not a dir: image; refusing to write into it`);
    }
    await writeFileAtomic(join(path, 'version'), DIR_VERSION);
    return new DirDestination(name, path);
  }

  async tryReuseBlob(desc: Descriptor, _opts?: ReuseOptions): Promise<boolean> {
    return hasFileOfSize(dirBlobPath(this.path, desc.digest), desc.size);
  }

  async putBlob(desc: Descriptor, stream: Readable, opts?: OpOptions): Promise<void> {
    await writeVerifiedFile(dirBlobPath(this.path, desc.digest), desc, stream, opts?.signal);
  }

  async putManifest(manifest: RawManifest, opts: PutManifestOptions): Promise<void> {
    const parsed = checkIncomingManifest(manifest, this.name);
    verifyBytes(`${this.name}: manifest`, manifest.bytes, manifest.digest);
    for (const d of parsed.kind === 'image' ? manifestBlobs(parsed.manifest) : parsed.index.manifests) {
      if (d.urls?.length) continue;
      const file = parsed.kind === 'image' ? dirBlobPath(this.path, d.digest) : dirManifestPath(this.path, d.digest);
      if (!(await hasFileOfSize(file, d.size))) {
        throw new NotFoundError(`${this.name}: manifest ${manifest.digest} references ${d.digest}, which was not written first`);
      }
    }
    if (opts.top) this.#pendingTop = manifest;
    else await writeFileAtomic(dirManifestPath(this.path, manifest.digest), manifest.bytes);
  }

  async currentDigest(_opts?: OpOptions): Promise<Digest | undefined> {
    const file = dirManifestPath(this.path);
    if (!(await exists(file))) return undefined;
    return digestBytes(await readCapped(file, MAX_MANIFEST_BYTES, `${this.name}: manifest.json`));
  }

  async commit(_opts?: OpOptions): Promise<void> {
    if (!this.#pendingTop) throw new InvalidInputError(`${this.name}: commit without a manifest`);
    await writeFileAtomic(dirManifestPath(this.path), this.#pendingTop.bytes);
  }

  async close(): Promise<void> {
    this.#pendingTop = undefined;
  }
}
