/**
 * The one tar writer: every tar the engine writes (build layers, `podman import`-style rootfs
 * layers, build-context artifacts, `oci-archive:`/`docker-archive:` files) is written through
 * TarWriter, so the header rules live in one place:
 * - Names are relative; a directory's name ends in `/` (added here when missing).
 * - Owners are numeric only (no user or group names); ids too large for ustar's 6 octal digits go in
 *   a PAX record instead of being truncated.
 * - Every mtime is given by the caller (no "now" default): the same input gives the same bytes.
 * - A mode of 0 stays 0 (tar-stream would replace it by 0644/0755).
 * - A regular file's size is announced up front; a body of another length fails the entry.
 * What goes in, in which order, and where the bytes go (a file, a hash, gzip) is the caller's
 * business: callers pipe `stream` where they want it.
 */
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SizeMismatchError } from '../errors.js';
import { tarStream } from './tar-stream.js';

export type TarEntryType = 'file' | 'link' | 'symlink' | 'directory' | 'character-device' | 'block-device' | 'fifo';

/** One entry's header, as the engine writes them. */
export interface TarEntryHeader {
  /** Relative path inside the archive. */
  name: string;
  type: TarEntryType;
  /** Permission bits (0o7777); the file type comes from `type`. */
  mode: number;
  mtime: Date;
  /** Default 0. */
  uid?: number;
  /** Default 0. */
  gid?: number;
  /** A regular file's size in bytes; 0 for every other type. */
  size?: number;
  /** Target of a symlink, or the archive path of the file a hardlink (`link`) names. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
}

/** ustar id fields as tar-stream writes them (6 octal digits); larger ids go in a PAX record. */
const USTAR_MAX_ID = 0o777777;

/** File-type bits of a mode: they keep tar-stream from defaulting a mode of 0, and are masked off when encoded. */
const TYPE_BITS: Record<TarEntryType, number> = {
  file: 0o100000,
  link: 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
  'character-device': 0o020000,
  'block-device': 0o060000,
  fifo: 0o010000,
};

type Header = import('tar-stream').Header;

function encodeHeader(e: TarEntryHeader): Header {
  const uid = e.uid ?? 0;
  const gid = e.gid ?? 0;
  const h: Header = {
    name: e.type === 'directory' && !e.name.endsWith('/') ? `${e.name}/` : e.name,
    mode: (e.mode & 0o7777) | TYPE_BITS[e.type],
    uid: uid > USTAR_MAX_ID ? 0 : uid,
    gid: gid > USTAR_MAX_ID ? 0 : gid,
    uname: '',
    gname: '',
    mtime: e.mtime,
    type: e.type,
    size: e.type === 'file' ? (e.size ?? 0) : 0,
    linkname: e.linkname ?? '',
    devmajor: e.devmajor ?? 0,
    devminor: e.devminor ?? 0,
  };
  const pax: Record<string, string> = {};
  if (uid > USTAR_MAX_ID) pax.uid = String(uid);
  if (gid > USTAR_MAX_ID) pax.gid = String(gid);
  if (Object.keys(pax).length > 0) h.pax = pax;
  return h;
}

/** Writes a tar stream entry by entry; read the bytes from `stream`. */
export class TarWriter {
  readonly #pack = tarStream().pack();

  /** The tar bytes. */
  get stream(): Readable {
    return this.#pack as unknown as Readable;
  }

  /**
   * Adds one entry and waits until it is written (or buffered). A regular file's content is `body`,
   * whole or streamed, of exactly `header.size` bytes; other types take no body.
   */
  async add(header: TarEntryHeader, body?: Buffer | Readable): Promise<void> {
    const h = encodeHeader(header);
    if (header.type === 'file' && body !== undefined && !Buffer.isBuffer(body)) {
      await pipeline(body, this.#pack.entry(h) as unknown as Writable);
      return;
    }
    // A regular file's sink waits for a body even when it is empty: give it an empty one.
    const data = header.type === 'file' ? ((body as Buffer | undefined) ?? Buffer.alloc(0)) : undefined;
    if (data && data.length !== h.size) throw new SizeMismatchError(`tar entry ${JSON.stringify(header.name)}`, h.size ?? 0, data.length);
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (data) this.#pack.entry(h, data, done);
      else this.#pack.entry(h, done);
    });
  }

  /** Ends the archive (two zero blocks); the stream ends once everything is read. */
  finalize(): void {
    this.#pack.finalize();
  }

  /** Tears the stream down, with `err` for whoever reads it. */
  destroy(err?: Error): void {
    this.#pack.destroy(err);
  }
}
