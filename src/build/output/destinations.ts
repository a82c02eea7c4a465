import { addAbortSignal, type Readable } from 'node:stream';
import { copyImage, type CopyResult } from '../../copy/copy.js';
import type { ProgressListener } from '../../copy/progress.js';
import type { Descriptor } from '../../oci/descriptor.js';
import type { Digest } from '../../oci/digest.js';
import type { OciLayout } from '../../oci/layout.js';
import type { RawManifest } from '../../oci/manifest.js';
import { hasRegistryHost } from '../../oci/reference.js';
import { parseImageName, type ImageSource, type TransportContext, type TransportReference } from '../../transports/index.js';
import type { ImageStore } from '../../runtime/store/index.js';
import { normaliseImageName } from '../../runtime/store/names.js';
import { StevedoreError } from '../../util/errors.js';
import type { WrittenImage } from './image.js';

/** Where a `-t` value sends the image. */
export type Destination =
  /** Kept in the local store only (a name without a registry host, as podman's `localhost/...`). */
  | { kind: 'local'; text: string; storeName: string }
  /** Pushed (a name with a registry host, or `docker://`), and kept in the local store too. */
  | { kind: 'push'; text: string; storeName: string; ref: TransportReference }
  /** Any other transport (`oci:DIR:TAG`, `oci-archive:`, `docker-archive:`, `dir:`). */
  | { kind: 'transport'; text: string; ref: TransportReference };

export class PushFailedError extends StevedoreError {
  constructor(dest: string, cause: unknown) {
    super('PUSH_FAILED', `pushing to ${dest}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

export function parseDestination(text: string): Destination {
  const colon = text.indexOf(':');
  const prefix = colon > 0 ? text.slice(0, colon) : '';
  if (prefix === 'docker') {
    const ref = parseImageName(text);
    return { kind: 'push', text, storeName: normaliseImageName(text).storeName, ref };
  }
  if (['oci', 'oci-archive', 'docker-archive', 'dir'].includes(prefix)) return { kind: 'transport', text, ref: parseImageName(text) };
  // A name with a registry host is pushed, except `localhost/...`: podman's name for a local image.
  if (hasRegistryHost(text) && !text.startsWith('localhost/'))
    return { kind: 'push', text, storeName: normaliseImageName(text).storeName, ref: parseImageName(text) };
  // podman's convention: a name with no registry host is a local image, `localhost/name:tag`.
  const local = text.startsWith('localhost/') ? text : `localhost/${text}`;
  return { kind: 'local', text, storeName: normaliseImageName(local).storeName };
}

/** The built image, read from the store's layout, as a copy source. */
class StoreImageSource implements ImageSource {
  readonly name: string;
  private readonly layout: OciLayout;
  private readonly image: WrittenImage;
  private readonly open: BlobOpener | undefined;
  constructor(layout: OciLayout, image: WrittenImage, open?: BlobOpener) {
    this.layout = layout;
    this.image = image;
    this.open = open;
    this.name = `build ${image.digest}`;
  }
  async getManifest(digest?: Digest): Promise<RawManifest> {
    if (digest !== undefined && digest !== this.image.digest) {
      const mediaType = this.image.children?.get(digest);
      if (mediaType === undefined) throw new StevedoreError('NOT_FOUND', `the built image has no manifest ${digest}`);
      return { bytes: await this.layout.readBlob(digest), mediaType, digest };
    }
    return { bytes: this.image.manifestBytes, mediaType: this.image.mediaType, digest: this.image.digest };
  }
  async getBlob(desc: Descriptor, opts?: { signal?: AbortSignal }): Promise<Readable> {
    const s = this.open ? await this.open(desc, opts?.signal) : await this.layout.openBlob(desc);
    return opts?.signal ? addAbortSignal(opts.signal, s) : s;
  }
  async close(): Promise<void> {}
}

/** Reads a blob of the image being sent, verified (e.g. LayerCompressor.open). */
export type BlobOpener = (desc: Descriptor, signal?: AbortSignal) => Promise<Readable>;

export interface PublishOptions {
  destContext?: TransportContext;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  /**
   * The image the local store's names get, when it is not the one sent: the store keeps the
   * builder's layers as plain tars, while pushes and layouts get them compressed. Default: `image`.
   */
  local?: WrittenImage;
  /** Reads the blobs of `image` (default: the store's layout). */
  openBlob?: BlobOpener;
}

/**
 * Sends the built image to every destination: pushes and layouts first (through the copy engine,
 * which reuses what is there and commits the manifest last), then the local store's names (to
 * `opts.local`, the image with the store's own layers, when given), so a failed push leaves no new
 * local tag either.
 */
export async function publish(store: ImageStore, image: WrittenImage, dests: readonly Destination[], opts: PublishOptions = {}): Promise<CopyResult[]> {
  const results: CopyResult[] = [];
  for (const d of dests) {
    if (d.kind === 'local') continue;
    opts.signal?.throwIfAborted();
    const src = new StoreImageSource(store.layout, image, opts.openBlob);
    try {
      const dest = await d.ref.newDestination(opts.destContext);
      try {
        results.push(
          await copyImage(src, dest, {
            all: true,
            ...(opts.signal ? { signal: opts.signal } : {}),
            ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
          }),
        );
      } finally {
        await dest.close();
      }
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      throw new PushFailedError(d.text, err);
    }
  }
  opts.signal?.throwIfAborted();
  for (const d of dests) {
    if (d.kind === 'transport') continue;
    await store.layout.setRef((opts.local ?? image).descriptor, d.storeName);
  }
  return results;
}
