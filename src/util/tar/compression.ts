import { open } from 'node:fs/promises';

/**
 * What a tar stream is wrapped in, told from its first bytes: the one compression sniffer of the
 * code base. Callers decide what they accept (OCI layers: none, gzip, zstd; `ADD` archives and
 * `docker save | gzip` files: more) and how they undo it.
 */
export type StreamCompression = 'none' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

const MAGICS: readonly (readonly [Exclude<StreamCompression, 'none'>, readonly number[]])[] = [
  ['gzip', [0x1f, 0x8b]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['bzip2', [0x42, 0x5a, 0x68]],
];

/** Enough leading bytes to tell every format above apart. */
export const SNIFF_BYTES = 6;

/**
 * The compression whose magic number `head` starts with; `none` otherwise. A tar starts with a file
 * name, so it never begins with one of these magics in practice; for anything unrecognised the tar
 * parser has the last word.
 */
export function sniffCompression(head: Uint8Array): StreamCompression {
  for (const [kind, magic] of MAGICS) {
    if (head.length >= magic.length && magic.every((b, i) => head[i] === b)) return kind;
  }
  return 'none';
}

/** The first `n` bytes of a file (fewer if it is shorter). */
export async function readFileHead(path: string, n: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** sniffCompression of a file's first bytes. */
export async function fileCompression(path: string): Promise<StreamCompression> {
  return sniffCompression(await readFileHead(path, SNIFF_BYTES));
}
