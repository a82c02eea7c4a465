import { rm } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import type { RawManifest } from '../oci/manifest.js';
import { makeScratchDir } from './local-util.js';
import { formatLayoutReference, OciLayoutDestination, OciLayoutSource, splitLayoutReference } from './oci.js';
import { directoryEntries, extractArchive, writeTarAtomic } from './tar-util.js';
import type { ImageDestination, ImageSource, OpOptions, PutManifestOptions, ReuseOptions, TransportContext, TransportReference } from './types.js';

/**
 * `oci-archive:PATH[:REF]` — a tar of an OCI image layout. Reading extracts it (streaming, checked
 * entry by entry) into a scratch directory and serves it as `oci:`; writing builds a layout in a
 * scratch directory and tars it into place atomically on commit().
 */

export class OciArchiveReference implements TransportReference {
  readonly transport = 'oci-archive';
  readonly path: string;
  readonly refName: string | undefined;

  constructor(path: string, refName?: string) {
    this.path = path;
    this.refName = refName;
  }

  toString(): string {
    return formatLayoutReference(this.transport, this.path, this.refName);
  }

  async newSource(ctx?: TransportContext): Promise<ImageSource> {
    const scratch = await makeScratchDir(ctx, 'oci-archive');
    try {
      await extractArchive(resolvePath(this.path), scratch, { what: this.toString(), links: 'reject' });
      return new OciArchiveSource(await OciLayoutSource.open(scratch, this.refName, this.toString()), scratch);
    } catch (err) {
      await rm(scratch, { recursive: true, force: true });
      throw err;
    }
  }

  async newDestination(ctx?: TransportContext): Promise<ImageDestination> {
    const scratch = await makeScratchDir(ctx, 'oci-archive');
    try {
      const inner = await OciLayoutDestination.open(scratch, this.refName, this.toString());
      return new OciArchiveDestination(inner, scratch, resolvePath(this.path));
    } catch (err) {
      await rm(scratch, { recursive: true, force: true });
      throw err;
    }
  }
}

/** `rest` is everything after `oci-archive:`. */
export function parseOciArchiveReference(rest: string): OciArchiveReference {
  const { path, refName } = splitLayoutReference(rest, 'oci-archive');
  return new OciArchiveReference(path, refName);
}

/** An extracted archive served as a layout; the extraction is removed on close(). */
class OciArchiveSource implements ImageSource {
  readonly name: string;
  /** The extraction: the archive's attachment ref names are read from it. */
  readonly layoutDir: string;
  readonly #inner: OciLayoutSource;
  readonly #scratch: string;

  constructor(inner: OciLayoutSource, scratch: string) {
    this.name = inner.name;
    this.layoutDir = scratch;
    this.#inner = inner;
    this.#scratch = scratch;
  }

  getManifest(digest?: Digest, opts?: OpOptions): Promise<RawManifest> {
    return this.#inner.getManifest(digest, opts);
  }

  getBlob(desc: Descriptor, opts?: OpOptions): Promise<Readable> {
    return this.#inner.getBlob(desc, opts);
  }

  listTags(opts?: OpOptions): Promise<string[]> {
    return this.#inner.listTags(opts);
  }

  async close(): Promise<void> {
    await rm(this.#scratch, { recursive: true, force: true });
  }
}

/**
 * Builds the layout in scratch space; commit() tars it to a temp file beside PATH and renames it
 * over PATH, so an interrupted copy leaves the previous archive (or none). As with skopeo, the
 * archive is written afresh: it holds only this image (and, from a registry, its attachments).
 */
class OciArchiveDestination implements ImageDestination {
  readonly name: string;
  readonly supportedManifestTypes?: readonly string[];
  /** The scratch layout: attachments written there before commit() are in the archive. */
  readonly layoutDir: string;
  readonly #inner: OciLayoutDestination;
  readonly #scratch: string;
  readonly #archive: string;

  constructor(inner: OciLayoutDestination, scratch: string, archive: string) {
    this.name = inner.name;
    this.layoutDir = scratch;
    if (inner.supportedManifestTypes) this.supportedManifestTypes = inner.supportedManifestTypes;
    this.#inner = inner;
    this.#scratch = scratch;
    this.#archive = archive;
  }

  tryReuseBlob(desc: Descriptor, opts?: ReuseOptions): Promise<boolean> {
    return this.#inner.tryReuseBlob(desc, opts);
  }

  putBlob(desc: Descriptor, stream: Readable, opts?: OpOptions): Promise<void> {
    return this.#inner.putBlob(desc, stream, opts);
  }

  putManifest(manifest: RawManifest, opts: PutManifestOptions): Promise<void> {
    return this.#inner.putManifest(manifest, opts);
  }

  async commit(opts?: OpOptions): Promise<void> {
    await this.#inner.commit(opts);
    await writeTarAtomic(this.#archive, await directoryEntries(this.#scratch), opts?.signal);
  }

  async close(): Promise<void> {
    await this.#inner.close();
    await rm(this.#scratch, { recursive: true, force: true });
  }
}
