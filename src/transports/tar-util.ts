import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline as pipelineCb } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { InvalidInputError } from '../util/errors.js';
import { tempSibling } from '../util/fs.js';
import { fileCompression } from '../util/tar/compression.js';
import { readTar } from '../util/tar/read.js';
import { TarWriter } from '../util/tar/write.js';

/**
 * Streaming tar helpers for the archive transports (`oci-archive:`, `docker-archive:`).
 *
 * Archives come from elsewhere and are treated as hostile: extraction only ever creates regular
 * files and directories below the target, checks every name lexically before touching the disk,
 * and never materialises links, so no later entry can be redirected through one. Content is
 * streamed entry by entry; nothing buffers a whole layer.
 */

/** A link entry that was seen but not created: `docker save`-style archives carry legacy ones. */
export interface ArchiveLink {
  /** Normalised archive path of the link itself. */
  name: string;
  /** Normalised archive path the link resolves to (always inside the archive). */
  target: string;
  kind: 'symlink' | 'hardlink';
}

export interface ExtractOptions {
  /** For messages: the archive as the user named it. */
  what: string;
  /**
   * `reject` (default): any symlink or hardlink fails the extraction. `record`: links whose target
   * stays inside the archive are returned (not created); links pointing outside still fail.
   */
  links?: 'reject' | 'record';
  signal?: AbortSignal;
}

export interface ExtractResult {
  /** Regular files extracted, by normalised archive path. */
  files: Set<string>;
  links: ArchiveLink[];
}

/**
 * Normalises an archive entry name to a relative POSIX path, refusing absolute names, `..`
 * components and anything else that could land outside the extraction directory.
 */
export function safeEntryName(raw: string, what: string): string {
  const name = raw.replace(/\/+$/, '');
  if (name === '' || name === '.' || name === './') return '';
  if (name.startsWith('/') || /^[A-Za-z]:[\\/]/.test(name)) {
    throw new InvalidInputError(`${what}: refusing archive entry "${raw}": absolute path`);
  }
  if (name.includes('\0') || name.includes('\\')) {
    throw new InvalidInputError(`${what}: refusing archive entry "${raw}": invalid characters in name`);
  }
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) {
    throw new InvalidInputError(`${what}: refusing archive entry "${raw}": ".." path component`);
  }
  return parts.join('/');
}

/** Resolves a link target relative to the link's directory; refuses targets that leave the archive. */
function resolveLinkTarget(linkName: string, target: string, kind: ArchiveLink['kind'], what: string): string {
  if (target.startsWith('/')) {
    throw new InvalidInputError(`${what}: refusing ${kind} "${linkName}" -> "${target}": absolute target`);
  }
  // Hardlink targets are archive paths; symlink targets are relative to the link's directory.
  const joined = kind === 'hardlink' ? posix.normalize(target) : posix.normalize(posix.join(posix.dirname(linkName), target));
  if (joined === '..' || joined.startsWith('../') || joined.startsWith('/')) {
    throw new InvalidInputError(`${what}: refusing ${kind} "${linkName}" -> "${target}": target outside the archive`);
  }
  return joined.replace(/^\.\/?/, '');
}

/**
 * Extracts a (possibly gzip-compressed) tar archive into `destDir`, which must exist and be empty.
 * Only regular files and directories are created; devices, FIFOs and unknown entry types are
 * refused; links follow `opts.links`. A duplicate file entry is refused too, since the transports'
 * archives never legitimately carry two versions of one file.
 */
export async function extractArchive(archivePath: string, destDir: string, opts: ExtractOptions): Promise<ExtractResult> {
  const { what } = opts;
  const files = new Set<string>();
  const links: ArchiveLink[] = [];
  const file = createReadStream(archivePath);
  let tarBytes: Readable = file;
  // `docker save | gzip` archives are read like plain ones.
  if ((await fileCompression(archivePath)) === 'gzip') {
    const gunzip = createGunzip();
    // Errors reach the reader through gunzip, which the pipeline destroys with them.
    pipelineCb(file, gunzip, () => undefined);
    tarBytes = gunzip;
  }
  try {
    await readTar(
      tarBytes,
      async (entry) => {
        const h = entry.header;
        const name = safeEntryName(h.name, what);
        switch (h.type) {
          case 'directory':
            if (name !== '') await mkdir(join(destDir, name), { recursive: true });
            break;
          case 'file':
          case 'contiguous-file': {
            if (name === '') throw new InvalidInputError(`${what}: refusing file entry with an empty name`);
            if (files.has(name)) throw new InvalidInputError(`${what}: refusing duplicate archive entry "${name}"`);
            files.add(name);
            const path = join(destDir, name);
            await mkdir(dirname(path), { recursive: true });
            // `wx`: never write through something already there.
            await pipeline(entry as unknown as Readable, createWriteStream(path, { flags: 'wx', mode: 0o600 }));
            break;
          }
          case 'symlink':
          case 'link': {
            const kind = h.type === 'symlink' ? 'symlink' : 'hardlink';
            if ((opts.links ?? 'reject') === 'reject') {
              throw new InvalidInputError(`${what}: refusing ${kind} entry "${h.name}": this archive format never contains links`);
            }
            links.push({ name, target: resolveLinkTarget(name, h.linkname ?? '', kind, what), kind });
            break;
          }
          default:
            throw new InvalidInputError(`${what}: refusing archive entry "${h.name}" of type ${String(h.type)}`);
        }
      },
      {
        signal: opts.signal,
        refuse: (name, reason) => new InvalidInputError(`${what}: refusing archive entry "${name}": ${reason}`),
        onFail: () => file.destroy(),
      },
    );
  } catch (err) {
    file.destroy();
    throw err;
  }
  return { files, links };
}

/** One entry of an archive to write: a directory, a file copied from disk, or bytes in memory. */
export type TarEntry = { name: string; type: 'directory' } | { name: string; type: 'file'; path: string } | { name: string; type: 'file'; data: Buffer };

/**
 * A fixed timestamp for every entry, so the same content always makes the same archive bytes
 * (reproducible archives; digests of archives are stable across runs).
 */
const EPOCH = new Date(0);

/**
 * Writes `entries` (in the given order) as an uncompressed tar to `outPath`, atomically: the data
 * goes to a temp file beside `outPath` that is renamed into place only when complete, so a reader
 * (or an interrupted copy) sees the old archive or the new one, never a partial one.
 */
export async function writeTarAtomic(outPath: string, entries: Iterable<TarEntry>, signal?: AbortSignal): Promise<void> {
  const tmp = tempSibling(outPath);
  const tar = new TarWriter();
  const writing = pipeline(tar.stream, createWriteStream(tmp, { mode: 0o644 }), signal ? { signal } : {});
  writing.catch(() => undefined);
  try {
    for (const e of entries) {
      signal?.throwIfAborted();
      const base = { name: e.name, mtime: EPOCH };
      if (e.type === 'directory') {
        await tar.add({ ...base, type: 'directory', mode: 0o755 });
      } else if ('data' in e) {
        await tar.add({ ...base, type: 'file', mode: 0o644, size: e.data.length }, e.data);
      } else {
        const size = (await stat(e.path)).size;
        await tar.add({ ...base, type: 'file', mode: 0o644, size }, createReadStream(e.path));
      }
    }
    tar.finalize();
    await writing;
    await rename(tmp, outPath);
  } catch (err) {
    tar.destroy(err as Error);
    await writing.catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * The entries of a directory tree, sorted by name at every level (deterministic archives), with
 * hidden files (temp files and lock files of interrupted writers) left out.
 */
export async function directoryEntries(root: string): Promise<TarEntry[]> {
  const out: TarEntry[] = [];
  async function walk(rel: string): Promise<void> {
    const dirents = await readdir(join(root, rel), { withFileTypes: true });
    dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const d of dirents) {
      if (d.name.startsWith('.')) continue;
      const name = rel === '' ? d.name : `${rel}/${d.name}`;
      if (d.isDirectory()) {
        out.push({ name, type: 'directory' });
        await walk(name);
      } else if (d.isFile()) {
        out.push({ name, type: 'file', path: join(root, name) });
      }
    }
  }
  await walk('');
  return out;
}
