import { realpath, stat } from 'node:fs/promises';
import { pipeline, type Readable } from 'node:stream';
import { InvalidInputError, StevedoreError, errorMessage } from '../../util/errors.js';
import { readTar, type TarEntryData } from '../../util/tar/read.js';
import type { Digest } from '../../oci/digest.js';
import { applyEntry, type ApplyContext, type EntryData } from './apply.js';
import { compressionForMediaType, openDecompressed, type Compression, type CompressionChoice } from './decompress.js';
import { DeferredDirectories } from './dirmeta.js';
import { parseEntry, type LayerEntry } from './entry.js';
import { LayerTooLargeError, SymlinkLoopError, UnsafeLayerEntryError } from './errors.js';
import { LayerMeter } from './meter.js';
import { Rechunk } from './rechunk.js';
import { singleIdNamespace } from '../cgroups.js';
import { DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, type UnpackOptions, type UnpackResult } from './types.js';
import { LayerPaths, classifyWhiteout, type Whiteout } from './whiteout.js';

/** Size of the chunks the decompressor is fed (see Rechunk). */
const INPUT_CHUNK = 1024 * 1024;

/** Gives an fs error the entry it happened on; our own errors already say everything. */
export function entryError(name: string, err: unknown): unknown {
  if (err instanceof SymlinkLoopError) return new UnsafeLayerEntryError(name, 'too many levels of symbolic links', { cause: err });
  if (err instanceof StevedoreError || (err instanceof Error && err.name === 'AbortError')) return err;
  const code = (err as NodeJS.ErrnoException).code;
  return new StevedoreError('LAYER_APPLY_FAILED', `applying layer entry ${JSON.stringify(name)}: ${errorMessage(err)}`, {
    cause: err,
    retryable: code === 'ENOSPC' || code === 'EIO',
  });
}

/** One entry from the parser: its header and its data, which must be consumed before the next. */
export type LayerTarEntry = TarEntryData;

/** What reading a whole layer stream established, whatever was done with its entries. */
export interface LayerStreamResult {
  /** Tar entries read. */
  entries: number;
  /** Uncompressed tar bytes read. */
  bytes: number;
  /** sha256 of the uncompressed tar. */
  diffID: Digest;
  compression: Compression;
}

/**
 * Reads one OCI layer (a tar stream, optionally gzip- or zstd-compressed) entry by entry.
 *
 * The stream is read once, never buffered whole: it is decompressed, hashed (the diffID) and counted
 * against the limits as it flows into the tar parser; `onEntry` gets each entry in tar order and
 * must consume (or resume) its data before it returns.
 *
 * The first error (one thrown by `onEntry`, an exceeded limit, a corrupt stream or an abort)
 * rejects the whole call and tears the stream down.
 */
export async function readLayer(
  layer: Readable,
  opts: Pick<UnpackOptions, 'compression' | 'mediaType' | 'limits' | 'signal'>,
  onEntry: (data: LayerTarEntry) => Promise<void>,
): Promise<LayerStreamResult> {
  const { signal } = opts;
  signal?.throwIfAborted();
  const maxEntries = opts.limits?.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const maxBytes = opts.limits?.maxBytes ?? DEFAULT_MAX_BYTES;
  for (const [what, n] of [
    ['maxEntries', maxEntries],
    ['maxBytes', maxBytes],
  ] as const) {
    if (!(n >= 0)) throw new InvalidInputError(`limits.${what} must be a non-negative number, got ${n}`);
  }
  const choice: CompressionChoice = opts.compression ?? (opts.mediaType ? compressionForMediaType(opts.mediaType) : 'auto');

  const meter = new LayerMeter(maxBytes);
  // Until the parser reads (it then watches the signal itself), an abort ends the stream being sniffed.
  const onAbort = (): void => {
    layer.destroy(signal?.reason);
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  let entries = 0;
  try {
    const { compression, source, decompressor } = await openDecompressed(layer, choice);
    signal?.throwIfAborted();
    // The decompressor is fed large chunks (each one is a thread-pool round trip); a plain tar goes
    // to the parser as it comes, without a copy.
    const stages: NodeJS.ReadWriteStream[] = decompressor ? [new Rechunk(INPUT_CHUNK), decompressor, meter] : [meter];
    let flowError: unknown;
    const flowed = new Promise<void>((resolve) => {
      pipeline([source, ...stages], (err) => {
        if (err) flowError ??= err;
        resolve();
      });
    });
    await readTar(
      meter,
      async (data) => {
        if (++entries > maxEntries) throw new LayerTooLargeError('entries', maxEntries);
        await onEntry(data);
      },
      { signal, refuse: (name, reason) => new UnsafeLayerEntryError(name, reason), entryError, onFail: () => layer.destroy() },
    );
    await flowed;
    if (flowError) throw flowError;
    const diffID = meter.diffID;
    if (diffID === undefined) throw new StevedoreError('LAYER_APPLY_FAILED', 'layer stream ended without a digest');
    return { entries, bytes: meter.bytes, diffID, compression };
  } catch (err) {
    layer.destroy();
    meter.destroy();
    throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/** Where the unpacker's writes go, and under which ownership rules; one per layer. */
export async function applyContext(rootfs: string, opts: Pick<UnpackOptions, 'rootless' | 'idMap' | 'signal'>): Promise<ApplyContext> {
  const root = await realpath(rootfs);
  if (!(await stat(root)).isDirectory()) throw new InvalidInputError(`rootfs ${rootfs} is not a directory`);
  // In a one-id user namespace every chown but to ourselves fails: files stay ours, as when rootless.
  const ownership = { chown: !(opts.rootless ?? (process.geteuid?.() !== 0 || singleIdNamespace())), idMap: opts.idMap };
  return {
    root,
    ownership,
    paths: new LayerPaths(root),
    dirs: new DeferredDirectories(root),
    skipped: [],
    parents: new Map(),
    signal: opts.signal,
  };
}

/**
 * Applies one entry that is not a whiteout, or one whiteout or opaque marker, in tar order.
 * Returns true for a marker (counted as a whiteout).
 */
export async function applyParsed(ctx: ApplyContext, entry: LayerEntry, whiteout: Whiteout | undefined, data: EntryData): Promise<boolean> {
  if (whiteout?.kind === 'aufs-metadata') {
    ctx.skipped.push({ path: entry.name, type: 'aufs-metadata', reason: 'aufs bookkeeping entry, not content' });
    return false;
  }
  if (whiteout) {
    ctx.parents.clear(); // a whiteout may remove a cached parent
    await ctx.paths.apply(ctx.root, whiteout);
    return true;
  }
  await applyEntry(ctx, entry, data);
  return false;
}

/**
 * Applies one OCI layer (a tar stream, optionally gzip- or zstd-compressed) onto a rootfs directory,
 * each entry written as it arrives (see readLayer for the streaming and limits).
 *
 * Every name is resolved inside the rootfs as if it were `/` (see resolveInRoot): absolute names and
 * symlinks, including ones planted by earlier layers or earlier in this tar, cannot reach outside it.
 * Whiteouts follow the OCI image spec and touch only lower layers' content.
 *
 * Failure policy: the first hostile entry (UNSAFE_LAYER_ENTRY), an exceeded limit (LAYER_TOO_LARGE),
 * a corrupt stream or an abort rejects the whole call, and the rootfs is left half-applied. Callers
 * unpack into a fresh snapshot and discard it on any error; nothing here tries to roll back.
 *
 * The rootfs must not be in use (no running container, no concurrent unpack) while this runs: path
 * checks and the operations they guard are separate system calls.
 */
export async function unpackLayer(rootfs: string, layer: Readable, opts: UnpackOptions = {}): Promise<UnpackResult> {
  opts.signal?.throwIfAborted();
  const ctx = await applyContext(rootfs, opts);
  let whiteouts = 0;
  const read = await readLayer(layer, opts, async (data) => {
    const entry = parseEntry(data.header);
    const whiteout = classifyWhiteout(entry.name, entry.components);
    if (await applyParsed(ctx, entry, whiteout, data)) whiteouts++;
    data.resume();
  });
  await ctx.dirs.applyAll(ctx.ownership, opts.signal);
  return { ...read, whiteouts, skipped: ctx.skipped };
}

/** A layer to apply in order, bottom first. */
export interface LayerInput {
  stream: Readable | (() => Readable | Promise<Readable>);
  mediaType?: string;
  compression?: CompressionChoice;
}

/**
 * Applies layers bottom to top onto one rootfs. Streams may be given as factories so that only the
 * layer being applied is open. Stops at the first failure, with the same discard-on-error policy.
 */
export async function applyLayers(
  rootfs: string,
  layers: readonly LayerInput[],
  opts: Omit<UnpackOptions, 'compression' | 'mediaType'> = {},
): Promise<UnpackResult[]> {
  const results: UnpackResult[] = [];
  for (const layer of layers) {
    const stream = typeof layer.stream === 'function' ? await layer.stream() : layer.stream;
    results.push(await unpackLayer(rootfs, stream, { ...opts, mediaType: layer.mediaType, compression: layer.compression }));
  }
  return results;
}
