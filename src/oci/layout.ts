import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidInputError, NotFoundError, TooLargeError } from '../util/errors.js';
import { exists, tempSibling, withFileLock, writeFileAtomic } from '../util/fs.js';
import { Annotation, type Descriptor } from './descriptor.js';
import { parseDigest, VerifyingStream, verifyBytes, digestBytes, type Digest } from './digest.js';
import type { ImageIndex } from './manifest.js';
import { MAX_MANIFEST_BYTES } from './manifest.js';
import { MediaType } from './mediatype.js';

export const OCI_LAYOUT_VERSION = '1.0.0';

/**
 * An OCI image layout directory (image-spec `image-layout.md`): `oci-layout`, `index.json` and
 * content-addressed `blobs/<alg>/<hex>`. Blobs are written to a temp file, verified, then renamed
 * into place, so a reader never sees a partial blob and an interrupted write leaves only a temp file.
 * `index.json` is updated under a lock file with read-modify-write, so concurrent writers (two
 * processes pushing different tags into one layout) never lose each other's entries.
 */
export class OciLayout {
  readonly path: string;

  private constructor(path: string) {
    this.path = path;
  }

  /** Opens an existing layout; with `create`, makes one if the directory has none. */
  static async open(path: string, opts: { create?: boolean } = {}): Promise<OciLayout> {
    const layoutFile = join(path, 'oci-layout');
    if (!(await exists(layoutFile))) {
      if (!opts.create) throw new NotFoundError(`${path} is not an OCI image layout (no oci-layout file)`);
      await mkdir(join(path, 'blobs', 'sha256'), { recursive: true });
      await writeFileAtomic(layoutFile, JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION }));
      if (!(await exists(join(path, 'index.json')))) {
        await writeFileAtomic(join(path, 'index.json'), JSON.stringify(emptyIndex()));
      }
    } else {
      const doc = JSON.parse(await readFile(layoutFile, 'utf8')) as { imageLayoutVersion?: string };
      if (typeof doc.imageLayoutVersion !== 'string') throw new InvalidInputError(`${layoutFile}: imageLayoutVersion missing`);
    }
    return new OciLayout(path);
  }

  blobPath(digest: Digest): string {
    const { algorithm, encoded } = parseDigest(digest);
    return join(this.path, 'blobs', algorithm, encoded);
  }

  async hasBlob(digest: Digest, size?: number): Promise<boolean> {
    try {
      const st = await stat(this.blobPath(digest));
      return size === undefined || size < 0 || st.size === size;
    } catch {
      return false;
    }
  }

  async blobSize(digest: Digest): Promise<number> {
    try {
      return (await stat(this.blobPath(digest))).size;
    } catch {
      throw new NotFoundError(`blob ${digest} not found in ${this.path}`);
    }
  }

  /** A stream of a stored blob, verified against its digest as it is read (disks rot too). */
  async openBlob(desc: Pick<Descriptor, 'digest'> & { size?: number }): Promise<Readable> {
    const path = this.blobPath(desc.digest);
    if (!(await exists(path))) throw new NotFoundError(`blob ${desc.digest} not found in ${this.path}`);
    const verifier = new VerifyingStream({ expected: desc.digest, size: desc.size, what: `${this.path}: blob ${desc.digest}` });
    const file = createReadStream(path);
    file.on('error', (err) => verifier.destroy(err));
    return file.pipe(verifier);
  }

  async readBlob(digest: Digest, limit = MAX_MANIFEST_BYTES): Promise<Buffer> {
    const path = this.blobPath(digest);
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch {
      throw new NotFoundError(`blob ${digest} not found in ${this.path}`);
    }
    if (size > limit) throw new TooLargeError(`blob ${digest}`, limit, size);
    const data = await readFile(path);
    verifyBytes(`${this.path}: blob ${digest}`, data, digest);
    return data;
  }

  /**
   * Stores a blob from a stream. The content is verified against `expected` (when given) before
   * it becomes visible; returns the digest and size actually written.
   */
  async writeBlob(stream: Readable, expected?: { digest: Digest; size?: number }, signal?: AbortSignal): Promise<{ digest: Digest; size: number }> {
    if (expected && (await this.hasBlob(expected.digest, expected.size))) {
      stream.resume();
      stream.destroy();
      return { digest: expected.digest, size: expected.size ?? (await this.blobSize(expected.digest)) };
    }
    const dir = join(this.path, 'blobs', expected ? parseDigest(expected.digest).algorithm : 'sha256');
    await mkdir(dir, { recursive: true });
    const tmp = tempSibling(join(dir, 'upload'));
    const verifier = new VerifyingStream({ expected: expected?.digest, size: expected?.size });
    try {
      await pipeline(stream, verifier, createWriteStream(tmp, { mode: 0o644 }), signal ? { signal } : {});
      const digest = verifier.digest!;
      await rename(tmp, this.blobPath(digest));
      return { digest, size: verifier.bytes };
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async writeBlobBytes(data: Uint8Array, expected?: Digest): Promise<Digest> {
    const digest = digestBytes(data, expected ? parseDigest(expected).algorithm : 'sha256');
    if (expected) verifyBytes('blob', data, expected);
    const path = this.blobPath(digest);
    if (!(await exists(path))) await writeFileAtomic(path, data);
    return digest;
  }

  async readIndex(): Promise<ImageIndex> {
    const path = join(this.path, 'index.json');
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch {
      throw new NotFoundError(`${this.path} has no index.json`);
    }
    const doc = JSON.parse(text) as ImageIndex;
    if (doc.schemaVersion !== 2 || !Array.isArray(doc.manifests)) {
      throw new InvalidInputError(`${path}: not an OCI image index`);
    }
    return doc;
  }

  /** Read-modify-write of index.json under the layout's lock. */
  async updateIndex(fn: (index: ImageIndex) => ImageIndex | void): Promise<ImageIndex> {
    return withFileLock(join(this.path, 'index.json.lock'), async () => {
      let index: ImageIndex;
      try {
        index = await this.readIndex();
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
        index = emptyIndex();
      }
      const next = fn(index) ?? index;
      await writeFileAtomic(join(this.path, 'index.json'), JSON.stringify(next));
      return next;
    });
  }

  /**
   * Records a manifest in index.json under a reference name (`org.opencontainers.image.ref.name`),
   * replacing any entry that had that name. Without a name the descriptor is added once by digest.
   */
  async setRef(desc: Descriptor, refName?: string, extraAnnotations?: Record<string, string>): Promise<void> {
    await this.updateIndex((index) => {
      const entry: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
      if (desc.platform) entry.platform = desc.platform;
      if (desc.artifactType) entry.artifactType = desc.artifactType;
      const annotations = { ...(desc.annotations ?? {}), ...(extraAnnotations ?? {}) };
      if (refName) annotations[Annotation.RefName] = refName;
      if (Object.keys(annotations).length > 0) entry.annotations = annotations;
      index.manifests = index.manifests.filter((m) =>
        refName ? m.annotations?.[Annotation.RefName] !== refName : !(m.digest === desc.digest && !m.annotations?.[Annotation.RefName]),
      );
      index.manifests.push(entry);
    });
  }

  async removeRef(refName: string): Promise<boolean> {
    let removed = false;
    await this.updateIndex((index) => {
      const before = index.manifests.length;
      index.manifests = index.manifests.filter((m) => m.annotations?.[Annotation.RefName] !== refName);
      removed = index.manifests.length !== before;
    });
    return removed;
  }

  /** The index.json entry for a reference name, or the only entry when no name is given. */
  async resolve(refName?: string): Promise<Descriptor> {
    const index = await this.readIndex();
    if (refName) {
      const hit = index.manifests.find((m) => m.annotations?.[Annotation.RefName] === refName);
      if (!hit) {
        // A digest is also an acceptable way to pick an entry.
        const byDigest = index.manifests.find((m) => m.digest === refName);
        if (byDigest) return byDigest;
        throw new NotFoundError(`no image named "${refName}" in ${this.path}`);
      }
      return hit;
    }
    if (index.manifests.length === 1) return index.manifests[0]!;
    if (index.manifests.length === 0) throw new NotFoundError(`${this.path} holds no images`);
    throw new InvalidInputError(`${this.path} holds ${index.manifests.length} images; name one (oci:${this.path}:NAME)`);
  }

  async refNames(): Promise<string[]> {
    const index = await this.readIndex();
    return index.manifests.map((m) => m.annotations?.[Annotation.RefName]).filter((n): n is string => typeof n === 'string');
  }

  /** Every blob digest stored (for garbage collection and tests). */
  async listBlobs(): Promise<Digest[]> {
    const out: Digest[] = [];
    const root = join(this.path, 'blobs');
    for (const alg of await readdir(root).catch(() => [] as string[])) {
      for (const hex of await readdir(join(root, alg))) {
        if (!hex.startsWith('.')) out.push(`${alg}:${hex}`);
      }
    }
    return out;
  }
}

function emptyIndex(): ImageIndex {
  return { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
}
