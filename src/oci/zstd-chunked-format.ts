/**
 * The zstd:chunked layer format as containers/storage (pkg/chunked) defines it, and a reader of its
 * table of contents. A zstd:chunked layer is an ordinary `tar+zstd` blob: decompressed as a whole
 * it is the layer's tar, byte for byte (so its diffID is unchanged). It is made of many zstd frames,
 * each regular file's content in a frame of its own, followed by three zstd skippable frames that a
 * plain zstd reader skips:
 *
 *  1. the TOC ("manifest"): JSON `{version: 1, entries: [...], tarSplitDigest}`, zstd-compressed;
 *  2. the tar-split data: tar-split's JSON lines (the tar headers and padding verbatim, and a
 *     CRC-64 of each file's content), zstd-compressed;
 *  3. the footer: 64 bytes, seven little-endian uint64 (TOC offset, compressed and uncompressed
 *     length, TOC type 1; tar-split offset, compressed and uncompressed length) and the magic
 *     `GNUlInUx`.
 *
 * Offsets point past the 8-byte skippable-frame header. The same positions are published as layer
 * annotations, so a partial-pull client (podman >= 5) fetches the TOC by one Range request, then
 * only the frames of files it does not have.
 */
import { createHash } from 'node:crypto';
import { zstdDecompressSync } from 'node:zlib';
import { InvalidInputError } from '../util/errors.js';
import { SKIPPABLE_MAGIC } from './zstd-frames.js';

export const ZSTD_CHUNKED_MANIFEST_CHECKSUM = 'io.github.containers.zstd-chunked.manifest-checksum';
export const ZSTD_CHUNKED_MANIFEST_POSITION = 'io.github.containers.zstd-chunked.manifest-position';
export const ZSTD_CHUNKED_TARSPLIT_POSITION = 'io.github.containers.zstd-chunked.tarsplit-position';
/** Older writers published the tar-split digest here; it now lives in the TOC (tarSplitDigest). */
export const ZSTD_CHUNKED_TARSPLIT_CHECKSUM = 'io.github.containers.zstd-chunked.tarsplit-checksum';
export const ZSTD_CHUNKED_ANNOTATIONS = [
  ZSTD_CHUNKED_MANIFEST_CHECKSUM,
  ZSTD_CHUNKED_MANIFEST_POSITION,
  ZSTD_CHUNKED_TARSPLIT_POSITION,
  ZSTD_CHUNKED_TARSPLIT_CHECKSUM,
];

/** The one TOC type defined: CRFS's JSON table of contents. */
export const TOC_TYPE_CRFS = 1;
export const FOOTER_SIZE = 64;
export const FOOTER_MAGIC = Buffer.from('GNUlInUx', 'latin1');

/**
 * One TOC entry: the fields of containers/storage's FileMetadata (CRFS's, without user and group
 * names), empty values omitted as Go's omitempty does.
 */
export interface TocEntry {
  type: 'reg' | 'hardlink' | 'symlink' | 'dir' | 'char' | 'block' | 'fifo' | 'chunk';
  name: string;
  linkName?: string;
  mode?: number;
  size?: number;
  uid?: number;
  gid?: number;
  modtime?: string;
  accesstime?: string;
  changetime?: string;
  devMajor?: number;
  devMinor?: number;
  /** Extended attributes, values base64. */
  xattrs?: Record<string, string>;
  /** `sha256:<hex>` of the file's uncompressed content (regular files with content). */
  digest?: string;
  /** Start of the zstd frame holding the content, in the blob. */
  offset?: number;
  /** End (exclusive) of that frame. */
  endOffset?: number;
}

export interface Toc {
  version: number;
  entries: TocEntry[];
  /** `sha256:<hex>` of the compressed tar-split data. */
  tarSplitDigest?: string;
}

/** Where the TOC and the tar-split data lie in the blob (the footer's, and the annotations', content). */
export interface ZstdChunkedPositions {
  tocOffset: number;
  tocLength: number;
  tocUncompressed: number;
  tocType: number;
  tarSplitOffset: number;
  tarSplitLength: number;
  tarSplitUncompressed: number;
}

/** The layer annotations of a zstd:chunked blob. */
export function positionAnnotations(p: ZstdChunkedPositions, tocChecksum: string): Record<string, string> {
  return {
    [ZSTD_CHUNKED_MANIFEST_CHECKSUM]: tocChecksum,
    [ZSTD_CHUNKED_MANIFEST_POSITION]: `${p.tocOffset}:${p.tocLength}:${p.tocUncompressed}:${p.tocType}`,
    [ZSTD_CHUNKED_TARSPLIT_POSITION]: `${p.tarSplitOffset}:${p.tarSplitLength}:${p.tarSplitUncompressed}`,
  };
}

export function encodeFooter(p: ZstdChunkedPositions): Buffer {
  const out = Buffer.alloc(8 + FOOTER_SIZE);
  out.writeUInt32LE(SKIPPABLE_MAGIC, 0);
  out.writeUInt32LE(FOOTER_SIZE, 4);
  const fields = [p.tocOffset, p.tocLength, p.tocUncompressed, p.tocType, p.tarSplitOffset, p.tarSplitLength, p.tarSplitUncompressed];
  fields.forEach((v, i) => out.writeBigUInt64LE(BigInt(v), 8 + 8 * i));
  FOOTER_MAGIC.copy(out, 8 + 56);
  return out;
}

/** Reads the footer from the last 72 bytes of a blob; undefined if the blob has no zstd:chunked footer. */
export function decodeFooter(tail: Buffer): ZstdChunkedPositions | undefined {
  if (tail.length < 8 + FOOTER_SIZE) return undefined;
  const f = tail.subarray(tail.length - 8 - FOOTER_SIZE);
  if (f.readUInt32LE(0) !== SKIPPABLE_MAGIC || f.readUInt32LE(4) !== FOOTER_SIZE || !f.subarray(64).equals(FOOTER_MAGIC)) return undefined;
  const n = (i: number) => Number(f.readBigUInt64LE(8 + 8 * i));
  return { tocOffset: n(0), tocLength: n(1), tocUncompressed: n(2), tocType: n(3), tarSplitOffset: n(4), tarSplitLength: n(5), tarSplitUncompressed: n(6) };
}

function parsePositions(annotations: Record<string, string>, what: string): ZstdChunkedPositions | undefined {
  const toc = annotations[ZSTD_CHUNKED_MANIFEST_POSITION];
  const ts = annotations[ZSTD_CHUNKED_TARSPLIT_POSITION];
  if (toc === undefined) return undefined;
  const nums = (s: string, n: number, key: string) => {
    const parts = s.split(':');
    if (parts.length !== n || parts.some((x) => !/^\d+$/.test(x)))
      throw new InvalidInputError(`${what}: annotation ${key} "${s}" is not ${n} ':'-separated integers`);
    return parts.map(Number);
  };
  const [tocOffset, tocLength, tocUncompressed, tocType] = nums(toc, 4, ZSTD_CHUNKED_MANIFEST_POSITION) as [number, number, number, number];
  const [tarSplitOffset, tarSplitLength, tarSplitUncompressed] =
    ts === undefined ? [0, 0, 0] : (nums(ts, 3, ZSTD_CHUNKED_TARSPLIT_POSITION) as [number, number, number]);
  return { tocOffset, tocLength, tocUncompressed, tocType, tarSplitOffset, tarSplitLength, tarSplitUncompressed };
}

export interface ZstdChunkedMetadata {
  positions: ZstdChunkedPositions;
  toc: Toc;
  /** tar-split's JSON lines, decompressed. */
  tarSplit: string;
}

/**
 * Reads the TOC and tar-split data of a whole zstd:chunked blob (tests, verification). The
 * positions come from the annotations when given (and must then agree with the footer), else from
 * the footer. The TOC's checksum annotation and its tarSplitDigest are checked.
 */
export function readZstdChunked(blob: Buffer, annotations: Record<string, string> = {}, what = 'layer'): ZstdChunkedMetadata {
  const footer = decodeFooter(blob);
  const fromAnnotations = parsePositions(annotations, what);
  const positions = fromAnnotations ?? footer;
  if (!positions) throw new InvalidInputError(`${what}: not a zstd:chunked blob (no footer, no ${ZSTD_CHUNKED_MANIFEST_POSITION} annotation)`);
  if (footer && fromAnnotations && JSON.stringify(footer) !== JSON.stringify(fromAnnotations)) {
    throw new InvalidInputError(`${what}: the zstd:chunked footer and the layer annotations disagree`);
  }
  if (positions.tocType !== TOC_TYPE_CRFS) throw new InvalidInputError(`${what}: zstd:chunked TOC type ${positions.tocType} is not supported`);
  const slice = (offset: number, length: number, label: string) => {
    if (offset < 8 || offset + length > blob.length)
      throw new InvalidInputError(`${what}: zstd:chunked ${label} at ${offset}+${length} lies outside the blob (${blob.length} bytes)`);
    const header = blob.subarray(offset - 8, offset);
    if (header.readUInt32LE(0) !== SKIPPABLE_MAGIC || header.readUInt32LE(4) !== length)
      throw new InvalidInputError(`${what}: zstd:chunked ${label} is not in a skippable frame of its length`);
    return blob.subarray(offset, offset + length);
  };
  const tocBytes = slice(positions.tocOffset, positions.tocLength, 'TOC');
  const checksum = annotations[ZSTD_CHUNKED_MANIFEST_CHECKSUM];
  if (checksum !== undefined && checksum !== `sha256:${createHash('sha256').update(tocBytes).digest('hex')}`) {
    throw new InvalidInputError(`${what}: zstd:chunked TOC does not match ${ZSTD_CHUNKED_MANIFEST_CHECKSUM} ${checksum}`);
  }
  const tocJson = zstdDecompressSync(tocBytes);
  if (tocJson.length !== positions.tocUncompressed)
    throw new InvalidInputError(`${what}: zstd:chunked TOC is ${tocJson.length} bytes, the position says ${positions.tocUncompressed}`);
  const toc = JSON.parse(tocJson.toString('utf8')) as Toc;
  let tarSplit = '';
  if (positions.tarSplitLength > 0) {
    const ts = slice(positions.tarSplitOffset, positions.tarSplitLength, 'tar-split data');
    if (toc.tarSplitDigest !== undefined && toc.tarSplitDigest !== `sha256:${createHash('sha256').update(ts).digest('hex')}`) {
      throw new InvalidInputError(`${what}: zstd:chunked tar-split data does not match the TOC's tarSplitDigest ${toc.tarSplitDigest}`);
    }
    tarSplit = zstdDecompressSync(ts).toString('utf8');
  }
  return { positions, toc, tarSplit };
}

/** Whether a layer descriptor announces a zstd:chunked blob. */
export function isZstdChunked(desc: { annotations?: Record<string, string> }): boolean {
  return desc.annotations?.[ZSTD_CHUNKED_MANIFEST_POSITION] !== undefined;
}

/** The descriptor without zstd:chunked annotations (a layer converted to anything else loses its TOC). */
export function withoutZstdChunked<D extends { annotations?: Record<string, string> }>(desc: D): D {
  if (!desc.annotations || !ZSTD_CHUNKED_ANNOTATIONS.some((k) => k in desc.annotations!)) return desc;
  const annotations = Object.fromEntries(Object.entries(desc.annotations).filter(([k]) => !ZSTD_CHUNKED_ANNOTATIONS.includes(k)));
  const out = { ...desc };
  if (Object.keys(annotations).length > 0) out.annotations = annotations;
  else delete out.annotations;
  return out;
}
