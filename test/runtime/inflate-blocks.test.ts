/**
 * The block decoder FastGunzip uses between stored blocks: same output as zlib for fixed and
 * dynamic Huffman blocks of every strategy, and an input cut anywhere asks for more instead of
 * failing or emitting a partial block.
 */
import { randomBytes } from 'node:crypto';
import { constants, deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodeBlocks, History } from '../../src/runtime/unpack/inflate-blocks.js';

const text = Buffer.from('It was the best of times, it was the worst of times, it was the age of wisdom. '.repeat(300));
const inputs: Array<[string, Buffer]> = [
  ['text', text],
  ['text and random', Buffer.concat([text.subarray(0, 5000), randomBytes(3000), text.subarray(0, 9000)])],
  ['runs of one byte', Buffer.concat([Buffer.alloc(5000, 7), Buffer.alloc(300, 9), Buffer.alloc(70_000, 0)])],
  ['one byte', Buffer.from('x')],
];
const strategies: Array<[string, number]> = [
  ['default', constants.Z_DEFAULT_STRATEGY],
  ['fixed Huffman', constants.Z_FIXED],
  ['Huffman only', constants.Z_HUFFMAN_ONLY],
  ['RLE', constants.Z_RLE],
];

describe('decodeBlocks', () => {
  for (const [what, data] of inputs) {
    for (const [how, strategy] of strategies) {
      it(`decodes ${what} (${how}) as zlib does, and asks for more when cut`, () => {
        const raw = deflateRawSync(data, { strategy, level: 9 });
        const hist = new History(new Uint8Array(0), 1024);
        const r = decodeBlocks(raw, 0, hist, 1 << 30);
        expect(r).toMatchObject({ stop: 'end', offset: raw.length });
        expect(Buffer.from(hist.buf.subarray(hist.start, hist.length)).equals(data)).toBe(true);
        for (const cut of [1, 2, 7, Math.floor(raw.length / 2), raw.length - 1]) {
          if (cut >= raw.length) continue;
          const h = new History(new Uint8Array(0), 1024);
          const partial = decodeBlocks(raw.subarray(0, cut), 0, h, 1 << 30);
          expect(partial.stop).toBe('more');
          // Resuming from the reported bit with all the input finishes the job.
          const rest = decodeBlocks(raw, (partial as { bit: number }).bit, h, 1 << 30);
          expect(rest.stop).toBe('end');
          expect(Buffer.from(h.buf.subarray(h.start, h.length)).equals(data)).toBe(true);
        }
      });
    }
  }

  it('uses the window given (back-references into output from before) and stops at the budget', () => {
    // Words in a random order: compressible, and the first copies can only come from the window.
    const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'];
    const window = Buffer.from(Array.from(randomBytes(8000), (b) => words[b % 8]).join(' ')).subarray(0, 32 * 1024);
    const data = Buffer.concat([window.subarray(100, 20_000), Buffer.from('end')]);
    const raw = deflateRawSync(data, { dictionary: window });
    const hist = new History(window, 1024);
    expect(decodeBlocks(raw, 0, hist, 1 << 30).stop).toBe('end');
    expect(Buffer.from(hist.buf.subarray(hist.start, hist.length)).equals(data)).toBe(true);
    expect(decodeBlocks(deflateRawSync(text), 0, new History(new Uint8Array(0), 16), 1000)).toEqual({ stop: 'budget' });
  });

  it('refuses a back-reference before the start of the output', () => {
    const window = randomBytes(1000);
    const raw = deflateRawSync(Buffer.concat([window, window]), { level: 9 });
    // Decoded without the first 1000 bytes' worth of history it cannot be (it refers into them):
    // cut the stream's output short by starting from an empty history on a dictionary stream.
    const withDict = deflateRawSync(window, { dictionary: window });
    expect(() => decodeBlocks(withDict, 0, new History(new Uint8Array(0), 16), 1 << 30)).toThrow(/distance too far back/);
    expect(decodeBlocks(raw, 0, new History(new Uint8Array(0), 16), 1 << 30).stop).toBe('end');
  });
});
