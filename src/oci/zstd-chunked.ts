/**
 * Writes a layer's tar as zstd:chunked (see zstd-chunked-format.ts): the tar is walked block by
 * block; its headers and padding go into small zstd frames, each regular file's content into a
 * frame of its own; then the TOC, the tar-split data and the footer follow as skippable frames.
 * Decompressed as a whole the blob is the input tar, byte for byte.
 *
 * Header fields are decoded with tar-stream's header decoder; only the block bookkeeping (where a
 * header, its extension records and a file's content begin and end) is done here, because the
 * frames must cut the input at exact byte offsets, which tar-stream's extractor does not expose.
 */
import { createHash, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { constants as zc, zstdCompressSync } from 'node:zlib';
import type { Digest } from './digest.js';
import { Crc64Iso } from './crc64.js';
import { InvalidInputError } from '../util/errors.js';
import { encodeFooter, positionAnnotations, TOC_TYPE_CRFS, type Toc, type TocEntry, type ZstdChunkedPositions } from './zstd-chunked-format.js';
import { rfc3339Seconds } from '../util/time.js';
import { createStableZstdCompress } from './zstd-compress.js';
import { SKIPPABLE_MAGIC } from './zstd-frames.js';

interface TarHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: Date;
  type: string | null;
  linkname: string | null;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}
interface TarHeaders {
  decode(buf: Buffer, filenameEncoding: string, allowUnknownFormat: boolean): TarHeader | null;
}

/** tar-stream's header codec (its package exports only the stream API; the file is loaded by path). */
let headersLib: TarHeaders | undefined;
function tarHeaders(): TarHeaders {
  if (!headersLib) {
    const require = createRequire(import.meta.url);
    headersLib = require(join(dirname(require.resolve('tar-stream')), 'headers.js')) as TarHeaders;
  }
  return headersLib;
}

export interface ZstdChunkedOptions {
  /** zstd level, 1-22 (default 3). */
  level?: number;
  signal?: AbortSignal;
  /** For messages: the layer being converted. */
  what?: string;
}

export interface ZstdChunkedResult {
  /** Digest and size of the compressed blob written. */
  digest: Digest;
  size: number;
  /** sha256 of the uncompressed tar (the layer's diffID). */
  diffId: Digest;
  /** The layer descriptor's zstd:chunked annotations. */
  annotations: Record<string, string>;
  entries: number;
}

const BLOCK = 512;
/** Content up to this size is compressed in one call rather than through a stream. */
const SMALL_FILE = 1 << 20;
/** Output is written to the file in batches of about this size. */
const WRITE_BATCH = 1 << 20;
/** PAX and GNU long-name records are read into memory: at most this (Go's archive/tar: 1 MiB). */
const MAX_EXTENSION_HEADER = 1 << 20;
/** Headers and padding are flushed into a frame (and a tar-split segment) once this much has gathered. */
const META_FLUSH = 1 << 20;
/** Bytes accepted after the end-of-archive blocks (tar pads to its record size, 10 KiB by default). */
const MAX_TRAILING = 1 << 20;

const TOC_TYPES: Record<string, TocEntry['type'] | undefined> = {
  file: 'reg',
  'contiguous-file': 'reg',
  link: 'hardlink',
  symlink: 'symlink',
  directory: 'dir',
  'character-device': 'char',
  'block-device': 'block',
  fifo: 'fifo',
};
const EXTENSION_TYPES = new Set(['pax-header', 'pax-global-header', 'gnu-long-path', 'gnu-long-link-path']);

/** Pulls exact byte counts out of a chunked stream. */
class ByteReader {
  readonly #it: AsyncIterator<Buffer>;
  #buf: Buffer = Buffer.alloc(0);
  #done = false;
  constructor(source: AsyncIterable<Buffer>) {
    this.#it = source[Symbol.asyncIterator]();
  }
  async #fill(): Promise<boolean> {
    if (this.#done) return false;
    const next = await this.#it.next();
    if (next.done) {
      this.#done = true;
      return false;
    }
    this.#buf = this.#buf.length === 0 ? next.value : Buffer.concat([this.#buf, next.value]);
    return true;
  }
  /** Exactly n bytes; fewer only at the end of the stream. */
  async read(n: number): Promise<Buffer> {
    while (this.#buf.length < n && (await this.#fill()));
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(out.length);
    return out;
  }
  /** Up to n bytes in the chunks they arrive in; throws if the stream ends first. */
  async *take(n: number, what: string): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.#buf.length === 0 && !(await this.#fill())) throw new InvalidInputError(`${what}: the tar ends inside an entry (${left} bytes missing)`);
      const out = this.#buf.subarray(0, Math.min(left, this.#buf.length));
      this.#buf = this.#buf.subarray(out.length);
      left -= out.length;
      yield out;
    }
  }
  /** Everything left. */
  async *rest(): AsyncGenerator<Buffer> {
    if (this.#buf.length > 0) yield this.#buf;
    this.#buf = Buffer.alloc(0);
    while (await this.#fill()) {
      yield this.#buf;
      this.#buf = Buffer.alloc(0);
    }
  }
}

/** PAX records as raw bytes (xattr values are binary; a string decoder would mangle them). */
function paxRecords(data: Buffer, what: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let at = 0;
  while (at < data.length) {
    if (data[at] === 0) break;
    const space = data.indexOf(0x20, at);
    const len = space < 0 ? Number.NaN : Number(data.subarray(at, space).toString('latin1'));
    if (!Number.isInteger(len) || len <= 0 || at + len > data.length || data[at + len - 1] !== 0x0a)
      throw new InvalidInputError(`${what}: malformed PAX record at byte ${at} of its header`);
    const record = data.subarray(space + 1, at + len - 1);
    const eq = record.indexOf(0x3d);
    if (eq < 0) throw new InvalidInputError(`${what}: PAX record without '=' at byte ${at} of its header`);
    out.set(record.subarray(0, eq).toString('utf8'), record.subarray(eq + 1));
    at += len;
  }
  return out;
}

/** Whole seconds as Go marshals a UTC time (RFC 3339, no fraction when there is none). */
function rfc3339(seconds: number, fraction = ''): string {
  const base = rfc3339Seconds(new Date(seconds * 1000)).slice(0, -1);
  const frac = fraction.replace(/0+$/, '');
  return `${base}${frac ? `.${frac}` : ''}Z`;
}

/** A PAX time (`1700000000.123456789`) with its digits kept (a Date would cut them to milliseconds). */
function paxTime(v: Buffer | undefined): string | undefined {
  if (!v) return undefined;
  const m = /^(-?\d+)(?:\.(\d+))?$/.exec(v.toString('latin1'));
  return m ? rfc3339(Number(m[1]), (m[2] ?? '').slice(0, 9)) : undefined;
}

function omitEmpty(e: TocEntry): TocEntry {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) {
    if (v === undefined || v === '' || v === 0 || (typeof v === 'object' && v !== null && Object.keys(v).length === 0)) continue;
    out[k] = v;
  }
  out.type = e.type;
  out.name = e.name;
  return out as unknown as TocEntry;
}

/** The output file, written sequentially, hashed and counted as it goes; small frames are batched into larger writes. */
class BlobWriter {
  offset = 0;
  readonly hash: Hash = createHash('sha256');
  readonly #fh: FileHandle;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  constructor(fh: FileHandle) {
    this.#fh = fh;
  }
  async write(buf: Buffer): Promise<void> {
    if (buf.length === 0) return;
    this.hash.update(buf);
    this.offset += buf.length;
    this.#pending.push(buf);
    this.#pendingBytes += buf.length;
    if (this.#pendingBytes >= WRITE_BATCH) await this.flush();
  }
  async flush(): Promise<void> {
    if (this.#pendingBytes === 0) return;
    const buf = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending);
    this.#pending = [];
    this.#pendingBytes = 0;
    let done = 0;
    while (done < buf.length) done += (await this.#fh.write(buf, done, buf.length - done)).bytesWritten;
  }
  async skippable(data: Buffer): Promise<number> {
    const header = Buffer.alloc(8);
    header.writeUInt32LE(SKIPPABLE_MAGIC, 0);
    header.writeUInt32LE(data.length, 4);
    await this.write(header);
    const at = this.offset;
    await this.write(data);
    return at;
  }
}

/**
 * Reads an uncompressed layer tar from `tar` and writes it as a zstd:chunked blob to `file`
 * (created or truncated). On failure the file is left for the caller to remove.
 */
export async function writeZstdChunked(tar: AsyncIterable<Buffer> | Readable, file: string, opts: ZstdChunkedOptions = {}): Promise<ZstdChunkedResult> {
  const what = opts.what ?? 'layer';
  const level = opts.level ?? 3;
  const zopts = { params: { [zc.ZSTD_c_compressionLevel]: level } };
  const signal = opts.signal;
  const diff = createHash('sha256');
  const input = (async function* () {
    for await (const chunk of tar as AsyncIterable<Buffer>) {
      signal?.throwIfAborted();
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
      diff.update(b);
      yield b;
    }
  })();
  const reader = new ByteReader(input);
  const fh = await open(file, 'w');
  const out = new BlobWriter(fh);
  const entries: TocEntry[] = [];
  const tarSplit: string[] = [];
  /** Headers and padding not yet written: one frame before the next file content (or the end). */
  let frame: Buffer[] = [];
  /** Headers and padding since the last tar-split file entry: one tar-split segment. */
  let segment: Buffer[] = [];
  let frameBytes = 0;
  let segmentBytes = 0;
  const flushFrame = async () => {
    const bytes = Buffer.concat(frame);
    frame = [];
    frameBytes = 0;
    if (bytes.length > 0) await out.write(zstdCompressSync(bytes, zopts));
  };
  const flushSegment = () => {
    const bytes = Buffer.concat(segment);
    segment = [];
    segmentBytes = 0;
    if (bytes.length > 0) tarSplit.push(JSON.stringify({ type: 2, payload: bytes.toString('base64'), position: tarSplit.length }));
  };
  // Long runs of headers (a layer of many empty files) are cut into several frames and segments
  // (both may be split anywhere), so memory does not grow with them.
  const pushMeta = async (b: Buffer) => {
    frame.push(b);
    segment.push(b);
    frameBytes += b.length;
    segmentBytes += b.length;
    if (frameBytes >= META_FLUSH) await flushFrame();
    if (segmentBytes >= META_FLUSH) flushSegment();
  };
  try {
    let pax = new Map<string, Buffer>();
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      const block = await reader.read(BLOCK);
      if (block.length === 0) break; // a tar without end-of-archive blocks
      if (block.length < BLOCK) throw new InvalidInputError(`${what}: the tar ends inside a header block`);
      await pushMeta(block);
      let h: TarHeader | null;
      try {
        h = tarHeaders().decode(block, 'utf-8', true);
      } catch (err) {
        throw new InvalidInputError(`${what}: invalid tar header at entry ${entries.length + 1}: ${(err as Error).message}`);
      }
      if (h === null) {
        // End of archive: the zero blocks and anything after them stay as they are.
        let trailing = 0;
        for await (const rest of reader.rest()) {
          trailing += rest.length;
          if (trailing > MAX_TRAILING) throw new InvalidInputError(`${what}: more than ${MAX_TRAILING} bytes after the end of the tar`);
          await pushMeta(rest);
        }
        break;
      }
      const type = h.type ?? 'unknown';
      if (EXTENSION_TYPES.has(type)) {
        // Held in memory: capped as Go's tar reader caps them (a hostile layer could announce gigabytes).
        if (h.size > MAX_EXTENSION_HEADER)
          throw new InvalidInputError(`${what}: tar ${type} record of ${h.size} bytes at entry ${entries.length + 1} (at most ${MAX_EXTENSION_HEADER})`);
        const data: Buffer[] = [];
        for await (const c of reader.take(Math.ceil(h.size / BLOCK) * BLOCK, what)) data.push(c);
        for (const c of data) await pushMeta(c);
        const body = Buffer.concat(data).subarray(0, h.size);
        if (type === 'pax-header') pax = paxRecords(body, what);
        else if (type === 'gnu-long-path') longName = body.toString('utf8').replace(/\0+$/, '');
        else if (type === 'gnu-long-link-path') longLink = body.toString('utf8').replace(/\0+$/, '');
        continue;
      }
      const tocType = TOC_TYPES[type];
      const name = pax.get('path')?.toString('utf8') ?? longName ?? h.name;
      if (!tocType) throw new InvalidInputError(`${what}: tar entry "${name}" has type ${JSON.stringify(type)}, which zstd:chunked cannot describe`);
      const linkName = pax.get('linkpath')?.toString('utf8') ?? longLink ?? h.linkname ?? undefined;
      const paxSize = pax.get('size');
      // As Go's tar reader: only regular files carry content, whatever the size field says.
      const size = tocType === 'reg' ? (paxSize ? Number(paxSize.toString('latin1')) : h.size) : 0;
      if (!Number.isSafeInteger(size) || size < 0) throw new InvalidInputError(`${what}: tar entry "${name}" has an invalid size`);
      const xattrs: Record<string, string> = {};
      for (const [k, v] of pax) if (k.startsWith('SCHILY.xattr.')) xattrs[k.slice('SCHILY.xattr.'.length)] = v.toString('base64');
      const entry: TocEntry = {
        type: tocType,
        name,
        linkName,
        mode: h.mode,
        size,
        uid: pax.get('uid') ? Number(pax.get('uid')!.toString('latin1')) : h.uid,
        gid: pax.get('gid') ? Number(pax.get('gid')!.toString('latin1')) : h.gid,
        modtime: paxTime(pax.get('mtime')) ?? rfc3339(Math.floor(h.mtime.getTime() / 1000)),
        accesstime: paxTime(pax.get('atime')),
        changetime: paxTime(pax.get('ctime')),
        devMajor: h.devmajor,
        devMinor: h.devminor,
        xattrs,
      };
      pax = new Map();
      longName = undefined;
      longLink = undefined;
      // tar-split: the headers since the last file are one segment, then this file's entry.
      flushSegment();
      const split: Record<string, unknown> = { type: 1, name };
      if (size > 0) {
        await flushFrame();
        const sha = createHash('sha256');
        const crc = new Crc64Iso();
        const start = out.offset;
        const content = reader.take(size, what);
        if (size <= SMALL_FILE) {
          const parts: Buffer[] = [];
          for await (const c of content) parts.push(c);
          const data = Buffer.concat(parts);
          sha.update(data);
          crc.update(data);
          await out.write(zstdCompressSync(data, zopts));
        } else {
          // Fixed pieces: the same file gives the same frame however the tar arrived (zstd-compress.ts).
          const z = createStableZstdCompress(level);
          const feed = Readable.from(
            (async function* () {
              for await (const c of content) {
                sha.update(c);
                crc.update(c);
                yield c;
              }
            })(),
          );
          feed.on('error', (err) => z.destroy(err));
          feed.pipe(z);
          for await (const c of z) await out.write(c as Buffer);
        }
        entry.digest = `sha256:${sha.digest('hex')}`;
        entry.offset = start;
        entry.endOffset = out.offset;
        split.size = size;
        split.payload = crc.digest().toString('base64');
        // The padding to the next block goes with the next header.
        const pad = (BLOCK - (size % BLOCK)) % BLOCK;
        if (pad > 0) for await (const c of reader.take(pad, what)) await pushMeta(c);
      } else {
        split.payload = null;
      }
      split.position = tarSplit.length;
      // The segment pushed above comes first; padding read since belongs to the next one.
      tarSplit.push(JSON.stringify(split));
      entries.push(omitEmpty(entry));
    }
    await flushFrame();
    flushSegment();
    const tarSplitJson = Buffer.from(tarSplit.map((l) => `${l}\n`).join(''), 'utf8');
    const tarSplitZ = zstdCompressSync(tarSplitJson, zopts);
    const toc: Toc = { version: 1, entries, tarSplitDigest: `sha256:${createHash('sha256').update(tarSplitZ).digest('hex')}` };
    const tocJson = Buffer.from(JSON.stringify(toc), 'utf8');
    const tocZ = zstdCompressSync(tocJson, zopts);
    const tocOffset = await out.skippable(tocZ);
    const tarSplitOffset = await out.skippable(tarSplitZ);
    const positions: ZstdChunkedPositions = {
      tocOffset,
      tocLength: tocZ.length,
      tocUncompressed: tocJson.length,
      tocType: TOC_TYPE_CRFS,
      tarSplitOffset,
      tarSplitLength: tarSplitZ.length,
      tarSplitUncompressed: tarSplitJson.length,
    };
    await out.write(encodeFooter(positions));
    await out.flush();
    await fh.sync();
    return {
      digest: `sha256:${out.hash.digest('hex')}` as Digest,
      size: out.offset,
      diffId: `sha256:${diff.digest('hex')}` as Digest,
      annotations: positionAnnotations(positions, `sha256:${createHash('sha256').update(tocZ).digest('hex')}`),
      entries: entries.length,
    };
  } finally {
    await fh.close();
  }
}
