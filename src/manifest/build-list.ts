/**
 * `build --manifest LIST` (buildah's): the images a build made are added to a manifest list,
 * created when missing. The build sends them (layers compressed, as a push would send them)
 * straight into the list's layout, blobs only (BuiltImagesTarget, one of the build's
 * destinations); from there they are added as `manifest add --all` adds an index's images, which
 * finds every blob already in place and writes none again. An entry the list already had for the
 * same platform is dropped, so building again updates the list instead of leaving two images for
 * one platform.
 */
import type { Digest } from '../oci/digest.js';
import { formatPlatform } from '../oci/platform.js';
import { OciLayoutDestination, OciLayoutSource } from '../transports/oci.js';
import type { ImageDestination, ImageSource, TransportReference } from '../transports/types.js';
import { StevedoreError } from '../util/errors.js';
import { addToList, createList, type ListLocation } from './list.js';

/**
 * The build's destination for `--manifest`: the list's layout, written blobs only (no name in its
 * index.json: the list names the images once addBuiltImages records them). As an `oci:` layout,
 * it takes OCI manifests (a `--format docker` build's images are converted on the way in). After
 * the build, its source is the image it received.
 */
export class BuiltImagesTarget implements TransportReference {
  readonly transport = 'oci';
  #dest: OciLayoutDestination | undefined;

  constructor(readonly location: ListLocation) {}

  toString(): string {
    return `oci:${this.location.layoutDir}`;
  }

  async newDestination(): Promise<ImageDestination> {
    this.#dest = await OciLayoutDestination.open(this.location.layoutDir, undefined, this.location.display, { untagged: true });
    return this.#dest;
  }

  /** The image (or index) the build wrote here, read back from the layout. */
  async newSource(): Promise<ImageSource> {
    const top = this.#dest?.written;
    if (!this.#dest || !top) throw new StevedoreError('NOT_FOUND', `${this.location.display}: the build wrote no image for the list`);
    return OciLayoutSource.at(this.#dest.layout, top, `${this.location.display} (built)`);
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
