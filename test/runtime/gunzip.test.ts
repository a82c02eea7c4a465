/**
 * FastGunzip against zlib: stored blocks, compressed blocks, both mixed in one member (the switch
 * to zlib with the 32 KiB dictionary), several members, every header field, input cut at awkward
 * places, and malformed streams refused.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { constants, crc32, deflateRawSync, gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { FastGunzip } from '../../src/runtime/unpack/gunzip.js';

async function fast(data: Buffer, cut: number | ((i: number) => number), checkCrc = true): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let o = 0, i = 0; o < data.length; i++) {
    const n = Math.max(1, typeof cut === 'number' ? cut : cut(i));
    pieces.push(data.subarray(o, o + n));
    o += n;
  }
  const out: Buffer[] = [];
  for await (const c of Readable.from(pieces).pipe(new FastGunzip({ checkCrc }))) out.push(c as Buffer);
  return Buffer.concat(out);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A member by hand: header, raw deflate data, trailer. */
function member(content: Buffer, deflated: Buffer, header = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])): Buffer {
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(content), 0);
  trailer.writeUInt32LE(content.length % 2 ** 32, 4);
  return Buffer.concat([header, deflated, trailer]);
}

/** Text-like content, then random bytes, then text again: zlib writes compressed, stored, compressed. */
function mixed(size: number): Buffer {
  const text = Buffer.from('the quick brown fox jumps over the lazy dog '.repeat(Math.ceil(size / 3 / 44))).subarray(0, Math.floor(size / 3));
  return Buffer.concat([text, randomBytes(Math.floor(size / 3)), text, Buffer.from('tail')]);
}

describe('FastGunzip', () => {
  const cases: Array<[string, Buffer]> = [
    ['random (stored blocks)', gzipSync(randomBytes(700_000))],
    ['level 0 (all stored)', gzipSync(randomBytes(300_000), { level: 0 })],
    ['text (compressed blocks)', gzipSync(Buffer.from('hello '.repeat(100_000)))],
    ['mixed: stored, then compressed referring back across the switch', gzipSync(mixed(600_000), { level: 1 })],
    ['random first, then text and random alternating (stored, then zlib for the rest)', gzipSync(Buffer.concat([randomBytes(200_000), mixed(600_000)]), { level: 6 })],
    ['random, a little text, random (compressed blocks decoded here, then stored again)', gzipSync(Buffer.concat([randomBytes(150_000), Buffer.from('abc '.repeat(5000)), randomBytes(150_000), Buffer.from('xyz '.repeat(3000))]))],
    ['a tar-like layer: compressible header, 3 MB random, zero padding', gzipSync(Buffer.concat([Buffer.alloc(512, 0x30), randomBytes(3_000_000), Buffer.alloc(1536)]), { level: 1 })],
    ['long compressible run after stored blocks (more than the decoder keeps: zlib takes over)', gzipSync(Buffer.concat([randomBytes(100_000), Buffer.from('lorem ipsum dolor sit amet '.repeat(200_000))]))],
    ['empty content', gzipSync(Buffer.alloc(0))],
    ['two members, stored then mixed', Buffer.concat([gzipSync(randomBytes(100_000)), gzipSync(mixed(200_000))])],
    ['three members, compressed then stored then compressed', Buffer.concat([gzipSync(Buffer.from('a'.repeat(5000))), gzipSync(randomBytes(70_000)), gzipSync(Buffer.from('z'.repeat(70_000)))])],
  ];

  for (const [name, gz] of cases) {
    it(`matches zlib for ${name}, whatever the input chunking`, async () => {
      const want = sha(gunzipSync(gz));
      for (const cut of [1 << 20, 65_536, 4099, 7, (i: number) => [1, 2, 3, 5, 9, 4096, 70_000][i % 7]!]) {
        expect(sha(await fast(gz, cut))).toBe(want);
      }
    });
  }

  it('crosses a stored block into a compressed one that copies from the stored bytes (the dictionary)', async () => {
    const random = randomBytes(40_000);
    // Stored block, then a fixed-Huffman block whose content repeats the random bytes: with a
    // 32 KiB window it must refer back into the stored block's output.
    const stored = deflateRawSync(random, { level: 0, finishFlush: constants.Z_SYNC_FLUSH });
    const content = Buffer.concat([random, random.subarray(10_000, 39_000)]);
    // Deflate the whole with a dictionary primed the same way zlib would have it.
    const rest = deflateRawSync(random.subarray(10_000, 39_000), { dictionary: random.subarray(-32 * 1024), level: 9 });
    const gz = member(content, Buffer.concat([stored, rest]));
    expect(sha(await fast(gz, 1000))).toBe(sha(content));
    expect(sha(gunzipSync(gz))).toBe(sha(content));
  });

  it('reads every optional header field (gzip -N writes a name; extra field, comment, header CRC)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stevedore-gz-'));
    try {
      const content = mixed(200_000);
      await writeFile(join(dir, 'some-file-name.tar'), content);
      const byCli = execFileSync('gzip', ['-c', '-N', join(dir, 'some-file-name.tar')]);
      expect(byCli[3]! & 0x08).toBe(0x08);
      expect(sha(await fast(byCli, 3))).toBe(sha(content));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const content = randomBytes(50_000);
    const header = Buffer.concat([
      Buffer.from([0x1f, 0x8b, 8, 0x02 | 0x04 | 0x08 | 0x10, 0, 0, 0, 0, 0, 3]),
      Buffer.from([5, 0]),
      Buffer.from('extra'),
      Buffer.from('name\0comment\0'),
      Buffer.from([0xaa, 0xbb]),
    ]);
    const gz = member(content, deflateRawSync(content, { level: 0 }), header);
    expect(sha(await fast(gz, 2))).toBe(sha(content));
  });

  it('ends every corrupted stream with an error or with output, never a hang (300 random byte flips)', async () => {
    const base = gzipSync(Buffer.concat([randomBytes(20_000), Buffer.from('abc '.repeat(3000)), randomBytes(20_000), Buffer.from('tail '.repeat(100))]));
    for (let i = 0; i < 300; i++) {
      const bad = Buffer.from(base);
      const at = 10 + Math.floor(Math.random() * (bad.length - 18));
      bad[at] = bad[at]! ^ (1 + Math.floor(Math.random() * 255));
      const outcome = await Promise.race([
        fast(bad, 4096).then(() => 'done', () => 'error'),
        new Promise<string>((r) => setTimeout(() => r('hang'), 2000)),
      ]);
      expect(outcome).not.toBe('hang');
    }
  });

  it('refuses malformed streams', async () => {
    const good = gzipSync(randomBytes(100_000));
    const refuse = (b: Buffer, re: RegExp, checkCrc = true) => expect(fast(b, 4096, checkCrc)).rejects.toThrow(re);
    await refuse(Buffer.from('not gzip at all'), /not a gzip stream/);
    await refuse(Buffer.alloc(0), /empty stream/);
    await refuse(good.subarray(0, good.length - 3), /unexpected end/);
    await refuse(good.subarray(0, 5000), /unexpected end/);
    await refuse(Buffer.concat([good, Buffer.from('garbage')]), /trailing data/);
    const badLen = Buffer.from(good);
    badLen.writeUInt32LE((badLen.readUInt32LE(badLen.length - 4) + 1) >>> 0, badLen.length - 4);
    await refuse(badLen, /length mismatch/, false);
    const badCrc = Buffer.from(good);
    badCrc.writeUInt32LE((badCrc.readUInt32LE(badCrc.length - 8) ^ 1) >>> 0, badCrc.length - 8);
    await refuse(badCrc, /CRC-32/);
    // Without the CRC check (the diffID covers the bytes), the same stream is read.
    expect((await fast(badCrc, 4096, false)).length).toBe(100_000);
    const badNlen = Buffer.from(good);
    badNlen[13] = badNlen[13]! ^ 0xff; // NLEN of the first stored block
    await refuse(badNlen, /stored block length/);
    const method = Buffer.from(good);
    method[2] = 7;
    await refuse(method, /compression method/);
    const compressed = gzipSync(Buffer.from('x'.repeat(100_000)));
    const broken = Buffer.from(compressed);
    broken[12] = broken[12]! ^ 0x55;
    await expect(fast(broken, 4096)).rejects.toThrow();
  });
});
