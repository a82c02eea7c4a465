import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/descriptor.js';
import type { OciLayout } from '../oci/layout.js';
import { manifestBlobs, parseManifest, type RawManifest } from '../oci/manifest.js';
import type { ImageDestination, OpOptions, PutManifestOptions, ReuseOptions } from '../transports/types.js';
import { NotFoundError } from '../util/errors.js';

/**
 * Writes an image into an OCI layout's blob store without naming it in index.json: the manifests
 * a list refers to by digest. Manifests keep their media type (a Docker image stays a Docker
 * image, as podman keeps a list's instances) unless `supportedManifestTypes` is given (the copy
 * engine converts to one of them); `written` is the top manifest after commit.
 */
export class LayoutBlobDestination implements ImageDestination {
  readonly name: string;
  readonly supportedManifestTypes?: readonly string[];
  written: Descriptor | undefined;
  #pending: Descriptor | undefined;

  constructor(
    readonly layout: OciLayout,
    name: string,
    opts: { supportedManifestTypes?: readonly string[] } = {},
  ) {
    this.name = name;
    if (opts.supportedManifestTypes) this.supportedManifestTypes = opts.supportedManifestTypes;
  }

  async tryReuseBlob(desc: Descriptor, _opts?: ReuseOptions): Promise<boolean> {
    return this.layout.hasBlob(desc.digest, desc.size);
  }

  async putBlob(desc: Descriptor, stream: Readable, opts?: OpOptions): Promise<void> {
    await this.layout.writeBlob(stream, { digest: desc.digest, size: desc.size }, opts?.signal);
  }

  async putManifest(manifest: RawManifest, opts: PutManifestOptions): Promise<void> {
    const parsed = parseManifest(manifest.bytes, manifest.mediaType);
    const refs = parsed.kind === 'image' ? manifestBlobs(parsed.manifest) : parsed.index.manifests;
    for (const d of refs) {
      if (d.urls?.length) continue;
      if (!(await this.layout.hasBlob(d.digest, d.size)))
        throw new NotFoundError(`${this.name}: manifest ${manifest.digest} references ${d.digest}, which was not written first`);
    }
    await this.layout.writeBlobBytes(manifest.bytes, manifest.digest);
    if (opts.top) this.#pending = { mediaType: parsed.mediaType, digest: manifest.digest, size: manifest.bytes.length };
  }

  async commit(_opts?: OpOptions): Promise<void> {
    this.written = this.#pending;
  }

  async close(): Promise<void> {
    this.#pending = undefined;
  }
}
