/**
 * `build --manifest LIST` (buildah's): the images a build made are added to a manifest list,
 * created when missing. The build sends them (layers compressed, as a push would send them)
 * straight into the list's layout, blobs only (BuiltImagesTarget, one of the build's
 * destinations); from there they are added as `manifest add --all` adds an index's images, which
 * finds every blob already in place and writes none again. An entry the list already had for the
 * same platform is dropped, so building again updates the list instead of leaving two images for
 * one platform.
 */
import type { Readable } from 'node:stream';
import { addAbortSignal } from 'node:stream';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import { OciLayout } from '../oci/layout.js';
import { MAX_MANIFEST_BYTES, parseManifest, type RawManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatype.js';
import { formatPlatform } from '../oci/platform.js';
import type { ImageDestination, ImageSource, OpOptions, TransportReference } from '../transports/types.js';
import { StevedoreError } from '../util/errors.js';
import { LayoutBlobDestination } from './layout-destination.js';
import { addToList, createList, type ListLocation } from './list.js';

/**
 * The build's destination for `--manifest`: the list's layout, written blobs only (no name in its
 * index.json: the list names the images once addBuiltImages records them). As an `oci:` layout,
 * it takes OCI manifests (a `--format docker` build's images are converted on the way in). After
 * the build, its source is the image it received.
 */
export class BuiltImagesTarget implements TransportReference {
  readonly transport = 'oci';
  #dest: LayoutBlobDestination | undefined;

  constructor(readonly location: ListLocation) {}

  toString(): string {
    return `oci:${this.location.layoutDir}`;
  }

  async newDestination(): Promise<ImageDestination> {
    const layout = await OciLayout.open(this.location.layoutDir, { create: true });
    this.#dest = new LayoutBlobDestination(layout, this.location.display, { supportedManifestTypes: [MediaType.OciManifest, MediaType.OciIndex] });
    return this.#dest;
  }

  /** The image (or index) the build wrote here, read back from the layout. */
  async newSource(): Promise<ImageSource> {
    const top = this.#dest?.written;
    if (!this.#dest || !top) throw new StevedoreError('NOT_FOUND', `${this.location.display}: the build wrote no image for the list`);
    const layout = this.#dest.layout;
    return {
      name: `${this.location.display} (built)`,
      async getManifest(digest?: Digest): Promise<RawManifest> {
        const d = digest ?? top.digest;
        // readBlob caps the size and checks the bytes against the digest.
        const bytes = await layout.readBlob(d, MAX_MANIFEST_BYTES);
        return { bytes, mediaType: parseManifest(bytes, d === top.digest ? top.mediaType : undefined).mediaType, digest: d };
      },
      async getBlob(desc: Descriptor, opts?: OpOptions): Promise<Readable> {
        const stream = await layout.openBlob(desc);
        return opts?.signal ? addAbortSignal(opts.signal, stream) : stream;
      },
      close: async () => undefined,
    };
  }
}

/** Records the images the build sent to `built` in its list (created when missing), replacing the entries of the same platforms. */
export async function addBuiltImages(
  built: BuiltImagesTarget,
  opts: { signal?: AbortSignal } = {},
): Promise<{ list: Digest; added: { digest: Digest; platform: string }[]; replaced: Digest[] }> {
  const loc = built.location;
  await createList(loc, { amend: true });
  const { list, entries, replaced } = await addToList(loc, built, {
    all: true,
    replacePlatforms: true,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return { list, added: entries.map((m) => ({ digest: m.digest, platform: m.platform ? formatPlatform(m.platform) : 'unknown' })), replaced };
}
