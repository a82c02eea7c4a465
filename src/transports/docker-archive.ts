import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { createZstdFramesDecompress } from '../oci/zstd-frames.js';
import { readFile, rm } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import type { Readable } from 'node:stream';
import { MAX_CONFIG_BYTES, parseConfig } from '../oci/config.js';
import type { Descriptor } from '../oci/descriptor.js';
import { digestBytes, digestHex, type Digest } from '../oci/digest.js';
import { encodeManifest, manifestBlobs, MAX_MANIFEST_BYTES, type ImageManifest, type RawManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatype.js';
import { familiarName, formatReference, parseReference, type ImageReference } from '../oci/reference.js';
import { DigestMismatchError, InvalidInputError, NotFoundError, UnsupportedError } from '../util/errors.js';
import { fileCompression, sniffCompression } from '../util/tar/compression.js';
import { checkIncomingManifest, hasFileOfSize, makeScratchDir, openVerified, readCapped, writeVerifiedFile } from './local-util.js';
import { extractArchive, safeEntryName, writeTarAtomic, type ArchiveLink, type TarEntry } from './tar-util.js';
import type { ImageDestination, ImageSource, OpOptions, PutManifestOptions, ReuseOptions, TransportContext, TransportReference } from './types.js';

/**
 * `docker-archive:PATH[:NAME[:TAG]]` — the `docker save` / `docker load` format: a tar with a
 * `manifest.json` list of `{Config, RepoTags, Layers}` items naming a config file and layer files.
 * As a source, `PATH:@N` picks the N-th item (as skopeo allows).
 */

/** One image of a docker archive's manifest.json. */
export interface DockerArchiveItem {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

export class DockerArchiveReference implements TransportReference {
  readonly transport = 'docker-archive';
  readonly path: string;
  /** NAME:TAG to write as RepoTags, or to pick an image by when reading. */
  readonly image: ImageReference | undefined;
  /** `@N`: pick the N-th manifest.json item when reading. */
  readonly sourceIndex: number | undefined;

  constructor(path: string, image?: ImageReference, sourceIndex?: number) {
    this.path = path;
    this.image = image;
    this.sourceIndex = sourceIndex;
  }

  toString(): string {
    if (this.image) return `docker-archive:${this.path}:${familiarName(this.image)}`;
    if (this.sourceIndex !== undefined) return `docker-archive:${this.path}:@${this.sourceIndex}`;
    return `docker-archive:${this.path}`;
  }

  async newSource(ctx?: TransportContext): Promise<ImageSource> {
    const scratch = await makeScratchDir(ctx, 'docker-archive');
    try {
      // `docker save` and skopeo write legacy `<id>/layer.tar` links; they are recorded, never created.
      const { files, links } = await extractArchive(resolvePath(this.path), scratch, { what: this.toString(), links: 'record' });
      return await DockerArchiveSource.open(this, scratch, files, links);
    } catch (err) {
      await rm(scratch, { recursive: true, force: true });
      throw err;
    }
  }

  async newDestination(ctx?: TransportContext): Promise<ImageDestination> {
    if (this.sourceIndex !== undefined) {
      throw new InvalidInputError(`${this.toString()}: @N selects an image to read; to write, name the image as NAME:TAG`);
    }
    return new DockerArchiveDestination(this, await makeScratchDir(ctx, 'docker-archive'), resolvePath(this.path));
  }
}

/**
 * `rest` is everything after `docker-archive:`. As in containers/image the path ends at the first
 * ':' (a docker reference contains colons of its own); a name without a tag means `:latest`.
 */
export function parseDockerArchiveReference(rest: string): DockerArchiveReference {
  const colon = rest.indexOf(':');
  const path = colon < 0 ? rest : rest.slice(0, colon);
  if (path === '') throw new InvalidInputError(`invalid docker-archive reference "docker-archive:${rest}": empty path`);
  if (colon < 0) return new DockerArchiveReference(path);
  const spec = rest.slice(colon + 1);
  if (spec.startsWith('@')) {
    if (!/^@\d+$/.test(spec)) throw new InvalidInputError(`invalid docker-archive reference "docker-archive:${rest}": expected @N`);
    return new DockerArchiveReference(path, undefined, Number(spec.slice(1)));
  }
  const image = parseReference(spec);
  if (image.digest) {
    throw new InvalidInputError(`invalid docker-archive reference "docker-archive:${rest}": archives name images by NAME:TAG, not by digest`);
  }
  return new DockerArchiveReference(path, { ...image, tag: image.tag ?? 'latest' });
}

/** Digest, size and compression of a layer file, in one streaming pass. */
async function describeFile(path: string): Promise<{ digest: Digest; size: number; compression: 'gzip' | 'zstd' | 'none' }> {
  const hash = createHash('sha256');
  let size = 0;
  let head: Buffer | undefined;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    if (!head) head = chunk.subarray(0, 4);
    hash.update(chunk);
    size += chunk.length;
  }
  const sniffed = sniffCompression(head ?? Buffer.alloc(0));
  // A layer is tar, tar+gzip or tar+zstd; anything else is taken for a plain tar (and its digest must be its diffID).
  const compression = sniffed === 'gzip' || sniffed === 'zstd' ? sniffed : 'none';
  return { digest: `sha256:${hash.digest('hex')}`, size, compression };
}

/** The file an archive path names, following recorded (never materialised) links inside the archive. */
function resolveArchiveFile(scratch: string, files: Set<string>, links: ArchiveLink[], raw: string, what: string): string {
  let name = safeEntryName(raw, what);
  for (let hops = 0; hops < 16; hops++) {
    if (files.has(name)) return join(scratch, name);
    const link = links.find((l) => l.name === name);
    if (!link) break;
    name = link.target;
  }
  throw new NotFoundError(`${what}: manifest.json names "${raw}", which is not a file in the archive`);
}

function parseArchiveManifest(bytes: Buffer, what: string): DockerArchiveItem[] {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new InvalidInputError(`${what}: manifest.json is not JSON (${(err as Error).message})`);
  }
  const ok = (it: unknown): it is DockerArchiveItem => {
    const o = it as Partial<DockerArchiveItem> | null;
    return (
      typeof o === 'object' &&
      o !== null &&
      typeof o.Config === 'string' &&
      Array.isArray(o.Layers) &&
      o.Layers.every((l) => typeof l === 'string') &&
      (o.RepoTags === undefined || o.RepoTags === null || (Array.isArray(o.RepoTags) && o.RepoTags.every((t) => typeof t === 'string')))
    );
  };
  if (!Array.isArray(doc) || !doc.every(ok)) throw new InvalidInputError(`${what}: manifest.json is not a docker archive manifest`);
  return doc;
}

function chooseItem(ref: DockerArchiveReference, items: DockerArchiveItem[], what: string): DockerArchiveItem {
  if (ref.sourceIndex !== undefined) {
    const item = items[ref.sourceIndex];
    if (!item) throw new NotFoundError(`${what}: the archive holds ${items.length} image(s); there is no @${ref.sourceIndex}`);
    return item;
  }
  if (ref.image) {
    // RepoTags are familiar names (`busybox:latest`); compare in normalised form.
    const want = formatReference(ref.image);
    const hit = items.find((it) =>
      (it.RepoTags ?? []).some((t) => {
        try {
          return formatReference(parseReference(t)) === want;
        } catch {
          return false;
        }
      }),
    );
    if (!hit) throw new NotFoundError(`${what}: no image tagged ${familiarName(ref.image)} in the archive`);
    return hit;
  }
  if (items.length !== 1) {
    throw new InvalidInputError(`${what}: the archive holds ${items.length} images; name one (docker-archive:PATH:NAME:TAG or :@N)`);
  }
  return items[0]!;
}

/**
 * Serves one image of an extracted archive. The archive has no manifest of the registry kind, so
 * one is made from the files: each is hashed for its digest and size. Compressed (gzip) layers give
 * a Docker schema 2 manifest, as `docker push` would. Uncompressed layers have no Docker media type
 * (Docker's only layer type says gzip, and containers/image mislabels plain tars with it), so when
 * any layer is uncompressed (or zstd) the manifest is an OCI one, whose media types say the truth.
 */
class DockerArchiveSource implements ImageSource {
  readonly name: string;
  /** The chosen image's RepoTags (what `docker load` / `podman load` name it by). */
  repoTags: readonly string[] = [];
  readonly #scratch: string;
  readonly #manifest: RawManifest;
  readonly #blobs: Map<Digest, string>;

  private constructor(name: string, scratch: string, manifest: RawManifest, blobs: Map<Digest, string>) {
    this.name = name;
    this.#scratch = scratch;
    this.#manifest = manifest;
    this.#blobs = blobs;
  }

  static async open(ref: DockerArchiveReference, scratch: string, files: Set<string>, links: ArchiveLink[]): Promise<DockerArchiveSource> {
    const what = ref.toString();
    if (!files.has('manifest.json')) throw new NotFoundError(`${what}: no manifest.json (not a docker archive)`);
    const items = parseArchiveManifest(await readCapped(join(scratch, 'manifest.json'), MAX_MANIFEST_BYTES, `${what}: manifest.json`), what);
    const item = chooseItem(ref, items, what);

    const configPath = resolveArchiveFile(scratch, files, links, item.Config, what);
    const configBytes = await readCapped(configPath, MAX_CONFIG_BYTES, `${what}: image config`);
    const config = parseConfig(configBytes);
    if (config.rootfs.diff_ids.length !== item.Layers.length) {
      throw new InvalidInputError(`${what}: config lists ${config.rootfs.diff_ids.length} layers, manifest.json ${item.Layers.length}`);
    }
    const blobs = new Map<Digest, string>();
    const configDigest = digestBytes(configBytes);
    blobs.set(configDigest, configPath);

    const layers: { digest: Digest; size: number; compression: 'gzip' | 'zstd' | 'none' }[] = [];
    for (const l of item.Layers) {
      const path = resolveArchiveFile(scratch, files, links, l, what);
      const info = await describeFile(path);
      blobs.set(info.digest, path);
      layers.push(info);
    }
    const docker = layers.every((l) => l.compression === 'gzip');
    const layerType = (c: 'gzip' | 'zstd' | 'none'): string =>
      docker ? MediaType.DockerLayerGzip : c === 'gzip' ? MediaType.OciLayerGzip : c === 'zstd' ? MediaType.OciLayerZstd : MediaType.OciLayer;
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: docker ? MediaType.DockerManifest : MediaType.OciManifest,
      config: { mediaType: docker ? MediaType.DockerConfig : MediaType.OciConfig, digest: configDigest, size: configBytes.length },
      layers: layers.map((l) => ({ mediaType: layerType(l.compression), digest: l.digest, size: l.size })),
    };
    const source = new DockerArchiveSource(what, scratch, encodeManifest(manifest), blobs);
    source.repoTags = item.RepoTags ?? [];
    return source;
  }

  async getManifest(digest?: Digest, _opts?: OpOptions): Promise<RawManifest> {
    if (digest === undefined || digest === this.#manifest.digest) return this.#manifest;
    throw new NotFoundError(`${this.name}: no manifest ${digest} (a docker archive holds single images, no index)`);
  }

  async getBlob(desc: Descriptor, opts?: OpOptions): Promise<Readable> {
    const path = this.#blobs.get(desc.digest);
    if (!path) throw new NotFoundError(`${this.name}: blob ${desc.digest} not found`);
    return openVerified(path, desc, this.name, opts?.signal);
  }

  async close(): Promise<void> {
    await rm(this.#scratch, { recursive: true, force: true });
  }
}

/**
 * Collects one image in scratch space and, on commit(), writes the archive atomically: config as
 * `<hex>.json`, layers as plain tars named by their diffID (`<diffID hex>.tar`, as `docker save`
 * and skopeo write them: a gzip or zstd layer is decompressed, and its diffID checked against the
 * config's rootfs.diff_ids; older `docker load` cannot read zstd), and `manifest.json` with
 * RepoTags from the reference. No legacy `repositories` file or `<id>/` directories: every loader
 * since Docker 1.10 reads manifest.json.
 */
class DockerArchiveDestination implements ImageDestination {
  readonly name: string;
  readonly supportedManifestTypes: readonly string[] = [MediaType.DockerManifest, MediaType.OciManifest];
  readonly #ref: DockerArchiveReference;
  readonly #scratch: string;
  readonly #archive: string;
  #pending: ImageManifest | undefined;

  constructor(ref: DockerArchiveReference, scratch: string, archive: string) {
    this.name = ref.toString();
    this.#ref = ref;
    this.#scratch = scratch;
    this.#archive = archive;
  }

  #blobPath(digest: Digest): string {
    return join(this.#scratch, digestHex(digest));
  }

  async tryReuseBlob(desc: Descriptor, _opts?: ReuseOptions): Promise<boolean> {
    return hasFileOfSize(this.#blobPath(desc.digest), desc.size);
  }

  async putBlob(desc: Descriptor, stream: Readable, opts?: OpOptions): Promise<void> {
    await writeVerifiedFile(this.#blobPath(desc.digest), desc, stream, opts?.signal);
  }

  async putManifest(manifest: RawManifest, opts: PutManifestOptions): Promise<void> {
    const parsed = checkIncomingManifest(manifest, this.name);
    // An index, or a child manifest (which only an index copy sends), cannot be stored.
    if (parsed.kind === 'index' || !opts.top) {
      throw new UnsupportedError(
        `${this.name}: a docker archive holds a single image, but the source is a multi-platform index; choose one platform (e.g. --platform linux/amd64)`,
      );
    }
    for (const d of manifestBlobs(parsed.manifest)) {
      if (!(await hasFileOfSize(this.#blobPath(d.digest), d.size))) {
        throw new NotFoundError(`${this.name}: manifest ${manifest.digest} references ${d.digest}, which was not written first`);
      }
    }
    this.#pending = parsed.manifest;
  }

  async commit(opts?: OpOptions): Promise<void> {
    const m = this.#pending;
    if (!m) throw new InvalidInputError(`${this.name}: commit without a manifest`);
    const configName = `${digestHex(m.config.digest)}.json`;
    const config = parseConfig(await readFile(this.#blobPath(m.config.digest)));
    const diffIds = config.rootfs?.diff_ids ?? [];
    if (diffIds.length !== m.layers.length) {
      throw new InvalidInputError(`${this.name}: the config lists ${diffIds.length} diff_ids for ${m.layers.length} layers`);
    }
    // Each layer as a plain tar, named by its diffID (checked while it is decompressed).
    const plain = new Map<Digest, string>();
    for (const [i, l] of m.layers.entries()) {
      if (plain.has(l.digest)) continue;
      plain.set(l.digest, await this.#plainLayer(l, diffIds[i] as Digest, opts?.signal));
    }
    const layerNames = m.layers.map((_l, i) => `${digestHex(diffIds[i] as Digest)}.tar`);
    const item: DockerArchiveItem = {
      Config: configName,
      RepoTags: this.#ref.image ? [familiarName(this.#ref.image)] : [],
      Layers: layerNames,
    };
    const entries: TarEntry[] = [{ name: configName, type: 'file', path: this.#blobPath(m.config.digest) }];
    const seen = new Set<string>();
    m.layers.forEach((l, i) => {
      // An image may repeat a layer; the archive stores its file once.
      if (seen.has(layerNames[i]!)) return;
      seen.add(layerNames[i]!);
      entries.push({ name: layerNames[i]!, type: 'file', path: plain.get(l.digest)! });
    });
    entries.push({ name: 'manifest.json', type: 'file', data: Buffer.from(JSON.stringify([item])) });
    await writeTarAtomic(this.#archive, entries, opts?.signal);
  }

  /** The layer's plain tar in scratch space: the blob itself if uncompressed, else its decompressed copy. */
  async #plainLayer(layer: Descriptor, diffId: Digest, signal?: AbortSignal): Promise<string> {
    const path = this.#blobPath(layer.digest);
    const compression = await fileCompression(path);
    const decompress = compression === 'gzip' ? createGunzip() : compression === 'zstd' ? createZstdFramesDecompress() : undefined;
    const what = `layer ${layer.digest} of ${this.name}`;
    if (!decompress) {
      if (layer.digest !== diffId) throw new DigestMismatchError(`${what} (uncompressed, so its diffID)`, diffId, layer.digest);
      return path;
    }
    const out = `${path}.plain`;
    const hash = createHash('sha256');
    await pipeline(
      createReadStream(path),
      decompress,
      new Transform({
        transform(chunk: Buffer, _enc, done) {
          hash.update(chunk);
          done(null, chunk);
        },
      }),
      createWriteStream(out),
      { signal },
    );
    const got = `sha256:${hash.digest('hex')}` as Digest;
    if (got !== diffId) throw new DigestMismatchError(`${what}, decompressed (its diffID)`, diffId, got);
    return out;
  }

  async close(): Promise<void> {
    this.#pending = undefined;
    await rm(this.#scratch, { recursive: true, force: true });
  }
}
