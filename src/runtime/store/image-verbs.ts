import type { CopyResult } from '../../copy/image.js';
import type { LayerCompression } from '../../oci/layer-compression.js';
import type { TransportContext, TransportReference } from '../../transports/types.js';
import { NotFoundError } from '../../util/errors.js';
import { normaliseImageName } from './names.js';
import type { ImageStore, StoredImage } from './store.js';

/**
 * The podman-compatible image verbs over the local store (`pull`, `tag`, `push`, `save`, `load`):
 * each is the copy engine between the store's OCI layout and another transport. The copy engine
 * loads only when one of them runs.
 */

/** A transport name (`docker://…`, `oci:…`); anything else is a registry reference. */
const TRANSPORT_NAME = /^(docker|oci|oci-archive|dir|docker-archive):/;

/** The store's own reference for an image it holds (its OCI layout, by store name; a name with a port has colons). */
async function storeReference(store: ImageStore, storeName: string): Promise<TransportReference> {
  const { OciReference } = await import('../../transports/oci.js');
  return new OciReference(store.imagesDir, storeName);
}

/** A stored image; a missing one is a NotFoundError naming it (and `hint`, a sentence in parentheses). */
async function existing(store: ImageStore, name: string, hint?: string): Promise<StoredImage> {
  return store.get(name).catch((err: unknown) => {
    if (err instanceof NotFoundError)
      throw new NotFoundError(`no image ${normaliseImageName(name).storeName} in the local store${hint ? ` (${hint})` : ''}`, { cause: err });
    throw err;
  });
}

async function copyBetween(
  src: string | TransportReference,
  dest: string | TransportReference,
  opts: { srcContext?: TransportContext; destContext?: TransportContext; signal?: AbortSignal; compression?: LayerCompression },
): Promise<CopyResult> {
  const [{ copyReference }, { parseImageName }] = await Promise.all([import('../../copy/copy.js'), import('../../transports/index.js')]);
  const ref = (r: string | TransportReference): TransportReference => (typeof r === 'string' ? parseImageName(r) : r);
  return copyReference(ref(src), ref(dest), opts);
}

/** `pull`: always fetches (podman's default `--pull=always` for the verb) and returns the stored image. */
export async function pullImage(store: ImageStore, name: string, opts: { context?: TransportContext; signal?: AbortSignal } = {}): Promise<StoredImage> {
  return store.pull(name, { policy: 'always', context: opts.context, signal: opts.signal });
}

/** `tag`: a second name for the same manifest (nothing is copied). */
export async function tagImage(store: ImageStore, source: string, target: string): Promise<string> {
  const from = await existing(store, source);
  const storeName = normaliseImageName(target).storeName;
  const desc = await store.layout.resolve(from.name);
  await store.layout.setRef(desc, storeName);
  return storeName;
}

/** What pushImage sent: the stored image, the destination as named (default `docker://` + its name), and the copy's result (the pushed digest). */
export interface PushedImage {
  image: StoredImage;
  destination: string;
  result: CopyResult;
}

/**
 * `push SOURCE [DESTINATION]` (podman's and buildah's): copies a stored image to a transport name
 * (default: its own registry name); a bare DESTINATION is a registry reference. `compression`
 * (`--compression-format`) converts every layer on the way (copy's option); `missingHint` is added
 * to the error for an image the store does not have.
 */
export async function pushImage(
  store: ImageStore,
  source: string,
  destination: string | undefined,
  opts: { context?: TransportContext; signal?: AbortSignal; compression?: LayerCompression; missingHint?: string } = {},
): Promise<PushedImage> {
  const img = await existing(store, source, opts.missingHint);
  const dest = destination ?? `docker://${img.name}`;
  const result = await copyBetween(await storeReference(store, img.name), TRANSPORT_NAME.test(dest) ? dest : `docker://${dest}`, {
    destContext: opts.context,
    signal: opts.signal,
    ...(opts.compression ? { compression: opts.compression } : {}),
  });
  return { image: img, destination: dest, result };
}

/** `save -o FILE [--format]`: writes an archive of a stored image. */
export async function saveImage(
  store: ImageStore,
  source: string,
  file: string,
  format: 'docker-archive' | 'oci-archive',
  opts: { signal?: AbortSignal } = {},
): Promise<void> {
  const img = await existing(store, source);
  const dest = format === 'docker-archive' ? `docker-archive:${file}:${img.name}` : `oci-archive:${file}:${img.name}`;
  await copyBetween(await storeReference(store, img.name), dest, { signal: opts.signal });
}

/**
 * `load -i FILE`: stores the image of an archive under the name it carries (else one made from the
 * file name). A docker archive is opened once, for its name and the copy alike: opening extracts
 * and digests the whole archive.
 */
export async function loadImage(store: ImageStore, file: string, opts: { signal?: AbortSignal } = {}): Promise<StoredImage> {
  const { parseImageName } = await import('../../transports/index.js');
  const dockerArchive = await parseImageName(`docker-archive:${file}`)
    .newSource()
    .catch(() => undefined);
  if (!dockerArchive) {
    const source = `oci-archive:${file}`;
    const storeName = normaliseImageName(source).storeName;
    await copyBetween(source, await storeReference(store, storeName), { signal: opts.signal });
    return store.get(storeName);
  }
  try {
    const named = (dockerArchive as { repoTags?: readonly string[] }).repoTags?.[0];
    const storeName = normaliseImageName(named ?? `docker-archive:${file}`).storeName;
    const { copyBetween: copyOpen } = await import('../../copy/copy.js');
    const dest = await (await storeReference(store, storeName)).newDestination();
    try {
      await copyOpen(dockerArchive, dest, { signal: opts.signal });
    } finally {
      await dest.close();
    }
    return store.get(storeName);
  } finally {
    await dockerArchive.close();
  }
}
