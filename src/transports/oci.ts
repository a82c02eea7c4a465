import { resolve as resolvePath } from 'node:path';
import { addAbortSignal, type Readable } from 'node:stream';
import type { Descriptor } from '../oci/descriptor.js';
import { verifyBytes, type Digest } from '../oci/digest.js';
import { OciLayout } from '../oci/layout.js';
import { manifestBlobs, MAX_MANIFEST_BYTES, parseManifest, type RawManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatype.js';
import { InvalidInputError, NotFoundError } from '../util/errors.js';
import { checkIncomingManifest } from './local-util.js';
import type { ImageDestination, ImageSource, OpOptions, PutManifestOptions, ReuseOptions, TransportContext, TransportReference } from './types.js';

/**
 * `oci:PATH[:REF]` — an OCI image layout directory; REF is the `org.opencontainers.image.ref.name`
 * annotation of an index.json entry, as in skopeo.
 */

// containers/image's grammar for the ref name (oci/layout/oci_transport.go).
const REF_NAME = /^([A-Za-z0-9._-]+)+(([:@/+])([A-Za-z0-9._-]+))*$/;

/**
 * Splits `PATH[:REF]`. A path may itself contain ':', so the last ':' starts a ref only when what
 * follows has no '/', which a ref name never needs and a path segment after a colon usually has.
 */
export function splitLayoutReference(rest: string, transport: string): { path: string; refName?: string } {
  const colon = rest.lastIndexOf(':');
  let path = rest;
  let refName: string | undefined;
  if (colon >= 0 && !rest.slice(colon + 1).includes('/')) {
    path = rest.slice(0, colon);
    refName = rest.slice(colon + 1);
    if (!REF_NAME.test(refName)) {
      throw new InvalidInputError(`invalid ${transport} reference "${transport}:${rest}": malformed image name "${refName}"`);
    }
  }
  if (path === '') throw new InvalidInputError(`invalid ${transport} reference "${transport}:${rest}": empty path`);
  return refName === undefined ? { path } : { path, refName };
}

export function formatLayoutReference(transport: string, path: string, refName?: string): string {
  return refName === undefined ? `${transport}:${path}` : `${transport}:${path}:${refName}`;
}

export class OciReference implements TransportReference {
  readonly transport = 'oci';
  readonly path: string;
  readonly refName: string | undefined;
  /**
   * Whether a copy carries attachments (cosign tags, referrers) between this layout and a registry
   * as ref names (copy/layout-attachments.ts): true for a layout the user names (`oci:PATH`),
   * false for the image store's own layout, which must not fill with signature ref names.
   */
  readonly attachments: boolean;

  constructor(path: string, refName?: string, opts: { attachments?: boolean } = {}) {
    this.path = path;
    this.refName = refName;
    this.attachments = opts.attachments ?? false;
  }

  toString(): string {
    return formatLayoutReference(this.transport, this.path, this.refName);
  }

  async newSource(_ctx?: TransportContext): Promise<ImageSource> {
    return OciLayoutSource.open(resolvePath(this.path), this.refName, this.toString(), this.attachments);
  }

  async newDestination(_ctx?: TransportContext): Promise<ImageDestination> {
    return OciLayoutDestination.open(resolvePath(this.path), this.refName, this.toString(), { attachments: this.attachments });
  }
}

/** `rest` is everything after `oci:`: a layout the user names, so attachments travel with copies. */
export function parseOciReference(rest: string): OciReference {
  const { path, refName } = splitLayoutReference(rest, 'oci');
  return new OciReference(path, refName, { attachments: true });
}

/** Reads the image an index.json entry names, and anything it references, verified. */
export class OciLayoutSource implements ImageSource {
  readonly name: string;
  readonly layout: OciLayout;
  /** The index.json entry this source was opened on. */
  readonly top: Descriptor;
  /** Set when attachments travel as this layout's ref names (OciReference.attachments). */
  readonly layoutDir?: string;

  private constructor(name: string, layout: OciLayout, top: Descriptor, dir: string | undefined) {
    this.name = name;
    this.layout = layout;
    this.top = top;
    if (dir !== undefined) this.layoutDir = dir;
  }

  /** Opens a layout and resolves REF (or the only entry) now, so a wrong name fails early. */
  static async open(path: string, refName: string | undefined, name: string, attachments = false): Promise<OciLayoutSource> {
    const layout = await OciLayout.open(path);
    let top: Descriptor;
    try {
      top = await layout.resolve(refName);
    } catch (err) {
      // The layout's own message names its path; archives extract to a temp dir, so say the user's name.
      if (err instanceof NotFoundError) {
        throw new NotFoundError(refName ? `${name}: no image named "${refName}"` : `${name}: holds no images`, { cause: err });
      }
      if (err instanceof InvalidInputError) throw new InvalidInputError(`${name}: ${err.message}`, { cause: err });
      throw err;
    }
    return new OciLayoutSource(name, layout, top, attachments ? path : undefined);
  }

  /** Reads `top` (an image or index index.json may not name, e.g. a manifest list's) from a layout already open. */
  static at(layout: OciLayout, top: Descriptor, name: string): OciLayoutSource {
    return new OciLayoutSource(name, layout, top, undefined);
  }

  async getManifest(digest?: Digest, _opts?: OpOptions): Promise<RawManifest> {
    const d = digest ?? this.top.digest;
    if (this.top.digest === d && this.top.size > MAX_MANIFEST_BYTES) {
      throw new InvalidInputError(`${this.name}: manifest ${d} declares ${this.top.size} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit`);
    }
    // readBlob caps the size before reading and checks the bytes against the digest.
    const bytes = await this.layout.readBlob(d, MAX_MANIFEST_BYTES);
    if (this.top.digest === d) verifyBytes(`${this.name}: manifest ${d}`, bytes, d, this.top.size);
    const reported = this.top.digest === d ? this.top.mediaType : undefined;
    const { mediaType } = parseManifest(bytes, reported);
    return { bytes, mediaType, digest: d };
  }

  async getBlob(desc: Descriptor, opts?: OpOptions): Promise<Readable> {
    const stream = await this.layout.openBlob(desc);
    return opts?.signal ? addAbortSignal(opts.signal, stream) : stream;
  }

  async listTags(_opts?: OpOptions): Promise<string[]> {
    return this.layout.refNames();
  }

  async close(): Promise<void> {}
}

/** How an OciLayoutDestination writes, beyond its layout and ref name. */
export interface OciLayoutDestinationOptions {
  /** Attachments travel as this layout's ref names (OciReference.attachments). */
  attachments?: boolean;
  /**
   * Blobs and manifests only: commit() names nothing in index.json and only reports the top
   * manifest in `written` (the images of a manifest list, which the list names by digest).
   */
  untagged?: boolean;
  /**
   * Manifests keep their media type (a Docker image stays a Docker image, as podman keeps a list's
   * instances) instead of the copy engine converting them to OCI, as skopeo does for `oci:`.
   */
  anyManifestType?: boolean;
}

/**
 * Writes into a layout: blobs and manifests go straight into `blobs/` (content-addressed, so a
 * rerun reuses them), and the top manifest is recorded in index.json only on commit(), so an
 * interrupted copy never makes the ref point at incomplete content. With `untagged`, index.json is
 * left alone and `written` says what was written.
 */
export class OciLayoutDestination implements ImageDestination {
  readonly name: string;
  readonly layout: OciLayout;
  readonly refName: string | undefined;
  /** Set when attachments travel as this layout's ref names (OciReference.attachments). */
  readonly layoutDir?: string;
  /** As skopeo: OCI layouts hold OCI manifests; the copy engine converts Docker ones. Absent with `anyManifestType`. */
  readonly supportedManifestTypes?: readonly string[];
  /** The top manifest, once committed. */
  written: Descriptor | undefined;
  readonly #untagged: boolean;
  #pendingTop: Descriptor | undefined;

  private constructor(name: string, layout: OciLayout, refName: string | undefined, opts: OciLayoutDestinationOptions) {
    if (opts.untagged && refName !== undefined) throw new InvalidInputError(`${name}: an untagged destination takes no ref name ("${refName}")`);
    this.name = name;
    this.layout = layout;
    this.refName = refName;
    this.#untagged = opts.untagged ?? false;
    if (opts.attachments) this.layoutDir = layout.path;
    if (!opts.anyManifestType) this.supportedManifestTypes = [MediaType.OciManifest, MediaType.OciIndex];
  }

  /** Opens (creating when missing) the layout at `path`. */
  static async open(path: string, refName: string | undefined, name: string, opts: OciLayoutDestinationOptions = {}): Promise<OciLayoutDestination> {
    return new OciLayoutDestination(name, await OciLayout.open(path, { create: true }), refName, opts);
  }

  /** Writes into a layout already open. */
  static of(layout: OciLayout, refName: string | undefined, name: string, opts: OciLayoutDestinationOptions = {}): OciLayoutDestination {
    return new OciLayoutDestination(name, layout, refName, opts);
  }

  async tryReuseBlob(desc: Descriptor, _opts?: ReuseOptions): Promise<boolean> {
    return this.layout.hasBlob(desc.digest, desc.size);
  }

  async putBlob(desc: Descriptor, stream: Readable, opts?: OpOptions): Promise<void> {
    await this.layout.writeBlob(stream, { digest: desc.digest, size: desc.size }, opts?.signal);
  }

  async putManifest(manifest: RawManifest, opts: PutManifestOptions): Promise<void> {
    const parsed = checkIncomingManifest(manifest, this.name);
    // Nothing the layout will name may point at content it does not hold.
    const refs = parsed.kind === 'image' ? manifestBlobs(parsed.manifest) : parsed.index.manifests;
    for (const d of refs) {
      if (d.urls?.length) continue; // foreign layers live elsewhere by design
      if (!(await this.layout.hasBlob(d.digest, d.size))) {
        throw new NotFoundError(`${this.name}: manifest ${manifest.digest} references ${d.digest}, which was not written first`);
      }
    }
    await this.layout.writeBlobBytes(manifest.bytes, manifest.digest);
    if (opts.top) this.#pendingTop = { mediaType: parsed.mediaType, digest: manifest.digest, size: manifest.bytes.length };
  }

  async currentDigest(_opts?: OpOptions): Promise<Digest | undefined> {
    if (this.refName === undefined) return undefined;
    try {
      return (await this.layout.resolve(this.refName)).digest;
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  async commit(_opts?: OpOptions): Promise<void> {
    if (!this.#pendingTop) throw new InvalidInputError(`${this.name}: commit without a manifest`);
    if (!this.#untagged) await this.layout.setRef(this.#pendingTop, this.refName);
    this.written = this.#pendingTop;
  }

  async close(): Promise<void> {
    // Blobs written by an uncommitted copy stay: unreferenced, harmless, and reused by a rerun.
    this.#pendingTop = undefined;
  }
}
