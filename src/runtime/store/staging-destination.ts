import { setMaxListeners } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import type { Descriptor } from '../../oci/descriptor.js';
import type { Digest } from '../../oci/digest.js';
import type { OciLayout } from '../../oci/layout.js';
import { layerCompression } from '../../oci/mediatype.js';
import type { RawManifest } from '../../oci/manifest.js';
import type {
  ImageDestination,
  ImageSource,
  OpOptions,
  PutManifestOptions,
  ReuseOptions,
  TransportContext,
  TransportReference,
} from '../../transports/types.js';
import { UnsupportedError } from '../../util/errors.js';
import { tempSibling } from '../../util/fs.js';
import { stageToTemp, type StagedTemp } from './stage.js';

/**
 * The store's destination for a pull that also builds snapshots: every layer blob the copy engine
 * writes is read once, from the network, into both the layout (a temp file renamed into place,
 * as the layout itself does) and the unpacker's staging (decompress, diffID, checked
 * headers, files on disk). So a layer is neither written and then read back, nor unpacked after
 * all downloads have finished: staging runs concurrently for every layer being downloaded.
 *
 * The staged layers wait in `staged` (by layer digest, the latest attempt of a retried blob) for
 * ImageStore.snapshot(), which checks each one's diffID against the config before using it.
 */
export class StagingDestination implements ImageDestination {
  readonly staged = new Map<Digest, Promise<StagedTemp>>();
  readonly #inner: ImageDestination;
  readonly #layout: OciLayout;
  readonly #snapshotsDir: string;

  constructor(inner: ImageDestination, layout: OciLayout, snapshotsDir: string, signal?: AbortSignal) {
    this.#inner = inner;
    this.#layout = layout;
    this.#snapshotsDir = snapshotsDir;
    this.#outer = signal;
    // Every layer's unpack listens for an abort: one signal of our own for all of them, so the
    // caller's signal gets one listener, not one per layer (Node warns past ten).
    setMaxListeners(0, this.#stop.signal);
    signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  readonly #stop = new AbortController();
  readonly #outer: AbortSignal | undefined;
  readonly #onAbort = (): void => this.#stop.abort(this.#outer?.reason);

  get name(): string {
    return this.#inner.name;
  }

  get supportedManifestTypes(): readonly string[] | undefined {
    return this.#inner.supportedManifestTypes;
  }

  tryReuseBlob(desc: Descriptor, opts?: ReuseOptions): Promise<boolean> {
    return this.#inner.tryReuseBlob(desc, opts);
  }

  async putBlob(desc: Descriptor, stream: Readable, opts?: OpOptions): Promise<void> {
    if (layerCompression(desc.mediaType) === 'unknown') return this.#inner.putBlob(desc, stream, opts);
    // One reader, two consumers; pipe() pauses the source for the slower one. The source verifies
    // the digest as the bytes flow and errors instead of ending on a mismatch (the ImageSource
    // contract, which every transport keeps with a VerifyingStream): both consumers get that error,
    // so neither the blob nor the staged layer can outlive bad bytes. The blob is therefore written
    // here without a second hash of the same bytes, and renamed into place only after the verified
    // stream ended and its length matched.
    const dir = dirname(this.#layout.blobPath(desc.digest));
    await mkdir(dir, { recursive: true });
    const tmp = tempSibling(join(dir, 'upload'));
    const file = createWriteStream(tmp, { mode: 0o644, highWaterMark: 1024 * 1024 });
    const toStage = new PassThrough({ highWaterMark: 1024 * 1024 });
    // Each consumer reports errors through its own listeners; a late one (a write after a consumer
    // gave up) must not become an unhandled 'error' event.
    toStage.on('error', () => undefined);
    // Socket-sized pieces go on as they are: the file stream batches queued ones into one writev,
    // and the unpacker gathers what its decompressor needs; gathering them into 1 MiB chunks here (one more copy of
    // every byte, and as many 1 MiB allocations for the GC) cost more than it saved: cold bench
    // run 2.91-2.99 s -> 2.47-2.78 s, user CPU 3.0-3.1 s -> 2.3-2.8 s.
    const source = stream;
    let bytes = 0;
    source.on('data', (chunk: Buffer) => (bytes += chunk.length));
    const written = new Promise<void>((resolve, reject) => {
      source.once('error', reject);
      file.once('error', reject);
      file.once('close', () => (file.errored ? reject(file.errored) : resolve()));
    });
    source.once('error', (err) => {
      file.destroy(err);
      toStage.destroy(err);
    });
    source.pipe(file);
    source.pipe(toStage);
    // An abort reaches both consumers through the source: the copy engine gives its signal to getBlob.
    const staging = stageToTemp(this.#snapshotsDir, toStage, desc, undefined, this.#stop.signal);
    // A layer the unpacker refuses is still a good blob: the pull goes on, and the refusal is
    // reported when the snapshot asks for this staging (its branch is unpiped).
    staging.catch(() => source.unpipe(toStage));
    const previous = this.staged.get(desc.digest);
    this.staged.set(desc.digest, staging);
    previous?.then(discard, () => undefined);
    try {
      await written;
      if (!source.readableEnded) throw new Error(`blob ${desc.digest}: the source stream closed before its end`);
      if (bytes !== desc.size) throw new Error(`blob ${desc.digest}: ${bytes} bytes, the descriptor says ${desc.size}`);
      await rename(tmp, this.#layout.blobPath(desc.digest));
    } catch (err) {
      toStage.destroy(err instanceof Error ? err : new Error(String(err)));
      await rm(tmp, { force: true });
      throw err;
    }
  }

  putManifest(manifest: RawManifest, opts: PutManifestOptions): Promise<void> {
    return this.#inner.putManifest(manifest, opts);
  }

  currentDigest(opts?: OpOptions): Promise<Digest | undefined> {
    return this.#inner.currentDigest ? this.#inner.currentDigest(opts) : Promise.resolve(undefined);
  }

  commit(opts?: OpOptions): Promise<void> {
    return this.#inner.commit(opts);
  }

  /** Closes the layout side; layers still being staged go on (an abort still stops them) until discardAll. */
  close(): Promise<void> {
    return this.#inner.close();
  }

  /** Removes every staged layer nobody took (after the snapshots are built, or on failure); the end of this destination. */
  async discardAll(): Promise<void> {
    const all = [...this.staged.values()];
    this.staged.clear();
    await Promise.all(all.map((p) => p.then(discard, () => undefined)));
    this.#outer?.removeEventListener('abort', this.#onAbort);
  }
}

/**
 * A destination reference for copyReference: opens `inner`'s destination wrapped in a
 * StagingDestination, so a pull that builds snapshots is the ordinary copy pipeline with one more
 * consumer of each layer. After the copy, `staged` holds the staged layers; `discardAll` removes
 * those nobody took.
 */
export class StagingReference implements TransportReference {
  readonly #inner: TransportReference;
  readonly #layout: OciLayout;
  readonly #snapshotsDir: string;
  readonly #signal: AbortSignal | undefined;
  #dest: StagingDestination | undefined;

  constructor(inner: TransportReference, layout: OciLayout, snapshotsDir: string, signal?: AbortSignal) {
    this.#inner = inner;
    this.#layout = layout;
    this.#snapshotsDir = snapshotsDir;
    this.#signal = signal;
  }

  get transport(): string {
    return this.#inner.transport;
  }

  toString(): string {
    return this.#inner.toString();
  }

  newSource(_ctx?: TransportContext): Promise<ImageSource> {
    return Promise.reject(new UnsupportedError(`${this.toString()}: a staging reference is a destination only`));
  }

  async newDestination(ctx?: TransportContext): Promise<ImageDestination> {
    if (this.#dest) throw new UnsupportedError(`${this.toString()}: a staging reference opens one destination`);
    this.#dest = new StagingDestination(await this.#inner.newDestination(ctx), this.#layout, this.#snapshotsDir, this.#signal);
    return this.#dest;
  }

  /** The staged layers of the copy, by layer digest (empty before the destination is opened). */
  get staged(): StagingDestination['staged'] {
    return this.#dest?.staged ?? new Map();
  }

  async discardAll(): Promise<void> {
    await this.#dest?.discardAll();
  }
}

async function discard(t: StagedTemp): Promise<void> {
  await rm(t.tmp, { recursive: true, force: true });
}
