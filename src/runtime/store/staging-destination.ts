import { rm } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import type { Descriptor } from '../../oci/descriptor.js';
import type { Digest } from '../../oci/digest.js';
import { layerCompression } from '../../oci/mediatype.js';
import type { RawManifest } from '../../oci/manifest.js';
import type { ImageDestination, OpOptions, PutManifestOptions, ReuseOptions } from '../../transports/types.js';
import { stageToTemp, type StagedTemp } from './stage.js';

/**
 * The store's destination for a pull that also builds snapshots: every layer blob the copy engine
 * writes is read once, from the network, into both the layout (through the wrapped destination,
 * which verifies and commits it as always) and the unpacker's staging (decompress, diffID, checked
 * headers, files on disk). So a layer is neither written and then read back, nor unpacked after
 * all downloads have finished: staging runs concurrently for every layer being downloaded.
 *
 * The staged layers wait in `staged` (by layer digest, the latest attempt of a retried blob) for
 * ImageStore.snapshot(), which checks each one's diffID against the config before using it.
 */
export class StagingDestination implements ImageDestination {
  readonly staged = new Map<Digest, Promise<StagedTemp>>();
  readonly #inner: ImageDestination;
  readonly #snapshotsDir: string;
  readonly #signal: AbortSignal | undefined;

  constructor(inner: ImageDestination, snapshotsDir: string, signal?: AbortSignal) {
    this.#inner = inner;
    this.#snapshotsDir = snapshotsDir;
    this.#signal = signal;
  }

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
    // the digest and errors instead of ending on a mismatch: both branches get that error, so
    // neither the blob nor the staged layer can outlive bad bytes.
    const toBlob = new PassThrough({ highWaterMark: 1024 * 1024 });
    const toStage = new PassThrough({ highWaterMark: 1024 * 1024 });
    // Each consumer reports errors through its own listeners; a late one (a write after a consumer
    // gave up) must not become an unhandled 'error' event.
    for (const s of [toBlob, toStage]) s.on('error', () => undefined);
    stream.once('error', (err) => {
      toBlob.destroy(err);
      toStage.destroy(err);
    });
    stream.pipe(toBlob);
    stream.pipe(toStage);
    const staging = stageToTemp(this.#snapshotsDir, toStage, desc, undefined, this.#signal);
    // A layer the unpacker refuses is still a good blob: the pull goes on, and the refusal is
    // reported when the snapshot asks for this staging (its stream is unpiped when destroyed).
    staging.catch(() => stream.unpipe(toStage));
    const previous = this.staged.get(desc.digest);
    this.staged.set(desc.digest, staging);
    previous?.then(discard, () => undefined);
    try {
      await this.#inner.putBlob(desc, toBlob, opts);
    } catch (err) {
      toStage.destroy(err instanceof Error ? err : new Error(String(err)));
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

  close(): Promise<void> {
    return this.#inner.close();
  }

  /** Removes every staged layer nobody took (after the snapshots are built, or on failure). */
  async discardAll(): Promise<void> {
    const all = [...this.staged.values()];
    this.staged.clear();
    await Promise.all(all.map((p) => p.then(discard, () => undefined)));
  }
}

async function discard(t: StagedTemp): Promise<void> {
  await rm(t.tmp, { recursive: true, force: true });
}
