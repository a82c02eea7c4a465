import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { SNIFF_BYTES, sniffCompression, fileCompression } from '../../src/util/tar/compression.js';

const XZ = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, 0x04]);
const BZIP2 = Buffer.from('BZh91AY&SY');

describe('sniffCompression (the one sniffer for layers, ADD archives and archive files)', () => {
  it('tells gzip, zstd, xz and bzip2 apart by their magic numbers', () => {
    expect(sniffCompression(gzipSync(Buffer.from('x')))).toBe('gzip');
    expect(sniffCompression(zstdCompressSync(Buffer.from('x')))).toBe('zstd');
    expect(sniffCompression(XZ)).toBe('xz');
    expect(sniffCompression(BZIP2)).toBe('bzip2');
  });

  it('takes anything else, and heads shorter than a magic, for no compression', () => {
    expect(sniffCompression(Buffer.from('etc/passwd\0'))).toBe('none');
    expect(sniffCompression(Buffer.alloc(0))).toBe('none');
    expect(sniffCompression(XZ.subarray(0, 5))).toBe('none');
    expect(sniffCompression(Buffer.from([0x1f]))).toBe('none');
  });

  it('needs no more than SNIFF_BYTES of a stream', () => {
    for (const head of [gzipSync(Buffer.from('x')), zstdCompressSync(Buffer.from('x')), XZ, BZIP2]) {
      expect(sniffCompression(head.subarray(0, SNIFF_BYTES))).toBe(sniffCompression(head));
    }
  });

  const dir = mkdtemp(join(tmpdir(), 'sniff-'));
  afterAll(async () => rm(await dir, { recursive: true, force: true }));

  it('sniffs a file from its first bytes, an empty file as none', async () => {
    const d = await dir;
    await writeFile(join(d, 'a.tgz'), gzipSync(Buffer.alloc(10_000)));
    await writeFile(join(d, 'empty'), '');
    expect(await fileCompression(join(d, 'a.tgz'))).toBe('gzip');
    expect(await fileCompression(join(d, 'empty'))).toBe('none');
  });
});
