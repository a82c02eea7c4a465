import { createReadStream } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { pipeline, type Readable } from 'node:stream';
import type { Digest } from '../../oci/digest.js';
import type { OciLayout } from '../../oci/layout.js';
import { openDecompressed, parseEntry, resolveParentInRoot, type RawHeader } from '../../runtime/unpack/index.js';
import { NotFoundError } from '../../util/errors.js';
import { readTar } from '../../util/tar/read.js';
import { OPAQUE_MARKER, WHITEOUT_PREFIX, type LayerEntry } from './entry.js';
import { entryFromStat } from './fs-entry.js';

/** What the merge needs of a layer: where its blob is. */
export interface MergeInput {
  digest: string;
}

const parentOf = (name: string): string => (name.includes('/') ? name.slice(0, name.lastIndexOf('/')) : '');
const baseOf = (name: string): string => name.slice(name.lastIndexOf('/') + 1);
const join2 = (dir: string, name: string): string => (dir === '' ? name : `${dir}/${name}`);

function whiteoutEntry(name: string, mtime: number): LayerEntry {
  return { name, type: 'whiteout', mode: 0, uid: 0, gid: 0, mtime };
}

function devNumbers(header: RawHeader): { devmajor: number; devminor: number } {
  const h = header as RawHeader & { devmajor?: number; devminor?: number };
  return { devmajor: h.devmajor ?? 0, devminor: h.devminor ?? 0 };
}

/** Whether what the whiteout or opaque marker `name` removes is in `lower` (resolved inside it). */
async function existsBelow(lower: string, name: string): Promise<boolean> {
  const base = baseOf(name);
  const target = base === OPAQUE_MARKER ? parentOf(name) : join2(parentOf(name), base.slice(WHITEOUT_PREFIX.length));
  if (target === '') return true;
  const { path } = await resolveParentInRoot(lower, target.split('/'));
  return (await lstat(path).catch(() => undefined)) !== undefined;
}

/** Every tar header of one stored layer (any compression), in order; contents are skipped. */
async function headersOf(layout: OciLayout, digest: string, signal?: AbortSignal): Promise<RawHeader[]> {
  const { source, decompressor } = await openDecompressed(createReadStream(layout.blobPath(digest as Digest)), 'auto');
  let tarBytes: Readable = source;
  if (decompressor) {
    tarBytes = decompressor;
    // Errors reach the reader through the decompressor, which the pipeline destroys with them.
    pipeline(source, decompressor, () => undefined);
  }
  const headers: RawHeader[] = [];
  await readTar(
    tarBytes,
    async (entry) => {
      headers.push(entry.header as RawHeader);
    },
    signal ? { signal, onFail: () => source.destroy() } : { onFail: () => source.destroy() },
  );
  return headers;
}

/**
 * The entries of the one layer equal to `layers` applied in order (whiteouts and opaque markers of
 * a later layer remove what an earlier one of them added, and are kept for what lies below), with
 * every entry's type, mode, owner and mtime as the layer headers state them and file contents read
 * from `rootfs` (the filesystem with all of them applied).
 *
 * Owners come from the headers, not from `rootfs`: without subordinate ids every file on disk is
 * the caller's, while the layers of a `--chown` copy carry the owners asked for. `keepWhiteouts`
 * false drops whiteouts (nothing below the merged layer to remove from). With `lower` (the
 * filesystem below the merged layer), a whiteout or opaque marker for what is not there is dropped
 * too: a file one of the layers added and a later one removed leaves no trace, not even its name.
 */
export async function mergeLayerEntries(
  layout: OciLayout,
  layers: readonly MergeInput[],
  rootfs: string,
  opts: { keepWhiteouts: boolean; lower?: string; signal?: AbortSignal },
): Promise<LayerEntry[]> {
  const merged = new Map<string, LayerEntry>();
  const dropBelow = (name: string): void => {
    const prefix = `${name}/`;
    for (const key of merged.keys()) if (key.startsWith(prefix)) merged.delete(key);
  };
  for (const layer of layers) {
    for (const header of await headersOf(layout, layer.digest, opts.signal)) {
      opts.signal?.throwIfAborted();
      const parsed = parseEntry(header);
      if (parsed.components.length === 0) continue;
      const name = parsed.components.join('/');
      const dir = parentOf(name);
      const base = baseOf(name);
      const mtime = Math.floor(parsed.meta.mtime.getTime() / 1000);
      if (base === OPAQUE_MARKER) {
        dropBelow(dir);
        merged.set(name, whiteoutEntry(name, mtime));
        continue;
      }
      if (base.startsWith(WHITEOUT_PREFIX)) {
        const target = join2(dir, base.slice(WHITEOUT_PREFIX.length));
        merged.delete(target);
        dropBelow(target);
        merged.set(name, whiteoutEntry(name, mtime));
        continue;
      }
      const wh = join2(dir, `${WHITEOUT_PREFIX}${base}`);
      const replacedBelow = merged.delete(wh);
      const previous = merged.get(name);
      if (parsed.kind === 'directory') {
        // A directory removed, then made again: only its new content is left.
        if (replacedBelow) merged.set(join2(name, OPAQUE_MARKER), whiteoutEntry(join2(name, OPAQUE_MARKER), mtime));
      } else if (previous?.type === 'directory') {
        dropBelow(name);
      }
      const { mode, uid, gid } = parsed.meta;
      const common = { name, mode, uid, gid, mtime };
      switch (parsed.kind) {
        case 'directory':
          merged.set(name, { ...common, type: 'directory' });
          break;
        case 'file':
        case 'hardlink':
          // Content (and hardlinks among the layer's files) from the applied filesystem below.
          merged.set(name, { ...common, type: 'file' });
          break;
        case 'symlink':
          merged.set(name, { ...common, type: 'symlink', linkname: parsed.linkname! });
          break;
        default:
          merged.set(name, { ...common, type: parsed.kind, ...devNumbers(header) } as LayerEntry);
      }
    }
  }
  const out: LayerEntry[] = [];
  for (const e of merged.values()) {
    if (e.type === 'whiteout') {
      if (opts.keepWhiteouts && (opts.lower === undefined || (await existsBelow(opts.lower, e.name)))) out.push(e);
      continue;
    }
    if (e.type !== 'file') {
      out.push(e);
      continue;
    }
    // Directories along the name resolved inside the root, as the unpacker placed the file: a
    // symlink a layer left there never leads the read outside the container's filesystem.
    const { path } = await resolveParentInRoot(rootfs, e.name.split('/'));
    const st = await lstat(path).catch(() => undefined);
    const disk = st?.isFile() ? await entryFromStat(e.name, path, st) : undefined;
    if (!disk) throw new NotFoundError(`${e.name}: in a layer being merged but not a file in the filesystem they make (${path})`);
    out.push({ ...disk, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime });
  }
  return out;
}
