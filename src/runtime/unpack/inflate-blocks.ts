/**
 * A small deflate (RFC 1951) decoder for the compressed blocks that sit between stored ones, so
 * FastGunzip can go back to passing stored blocks through after them (zlib, once given a stream,
 * keeps it: a compressed block ends at an arbitrary bit, which only a decoder can find). It is
 * only ever run on a bounded stretch of input with a bounded output (the caller's budget); what
 * it decodes is still hashed into the layer's diffID, so a decoding mistake cannot pass unnoticed.
 */

interface Huffman {
  count: Uint16Array;
  symbol: Uint16Array;
}

const LBASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LEXT = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DBASE = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577];
const DEXT = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
const CLORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];
const MAXBITS = 15;

export class DeflateError extends Error {}
/** The input ended inside a block: decode again from the block's start with more input. */
class NeedInput extends Error {}

function build(lengths: ArrayLike<number>, n: number): Huffman {
  const count = new Uint16Array(MAXBITS + 1);
  for (let i = 0; i < n; i++) count[lengths[i]!]!++;
  if (count[0] === n) return { count, symbol: new Uint16Array(0) };
  let left = 1;
  for (let len = 1; len <= MAXBITS; len++) {
    left = (left << 1) - count[len]!;
    if (left < 0) throw new DeflateError('over-subscribed Huffman code');
  }
  const offs = new Uint16Array(MAXBITS + 1);
  for (let len = 1; len < MAXBITS; len++) offs[len + 1] = offs[len]! + count[len]!;
  const symbol = new Uint16Array(n);
  for (let i = 0; i < n; i++) if (lengths[i] !== 0) symbol[offs[lengths[i]!]!++] = i;
  return { count, symbol };
}

const FIXED = ((): { lit: Huffman; dist: Huffman } => {
  const l = new Uint8Array(288);
  l.fill(8, 0, 144);
  l.fill(9, 144, 256);
  l.fill(7, 256, 280);
  l.fill(8, 280, 288);
  return { lit: build(l, 288), dist: build(new Uint8Array(30).fill(5), 30) };
})();

/** Output so far: the window the member had before (for back-references) and what was decoded. */
export class History {
  buf: Uint8Array;
  length: number;
  readonly start: number;
  constructor(window: Uint8Array, capacity: number) {
    this.buf = new Uint8Array(window.length + capacity);
    this.buf.set(window);
    this.length = window.length;
    this.start = window.length;
  }
  get decoded(): number {
    return this.length - this.start;
  }
  push(b: number): void {
    if (this.length === this.buf.length) this.grow();
    this.buf[this.length++] = b;
  }
  copy(dist: number, len: number): void {
    if (dist > this.length) throw new DeflateError('distance too far back');
    while (this.length + len > this.buf.length) this.grow();
    for (let i = 0; i < len; i++, this.length++) this.buf[this.length] = this.buf[this.length - dist]!;
  }
  private grow(): void {
    const next = new Uint8Array(this.buf.length * 2);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }
}

export type BlocksResult =
  /** A stored block's header was read: its LEN/NLEN start at byte `offset` (byte-aligned). */
  | { stop: 'stored'; final: boolean; offset: number }
  /** The final block ended: the gzip trailer starts at byte `offset`. */
  | { stop: 'end'; offset: number }
  /** The input ran out at a block boundary (bit `bit`): call again from there with more input. */
  | { stop: 'more'; bit: number }
  /** More output than `maxOut` would be decoded: leave this stream to zlib. */
  | { stop: 'budget' };

/**
 * Decodes whole compressed blocks from `input`, starting at bit `bit`, into `hist`, until a stored
 * block or the end of the stream. A block cut short by the end of the input is undone (hist is
 * rolled back) and reported as `more`.
 */
export function decodeBlocks(input: Uint8Array, bit: number, hist: History, maxOut: number): BlocksResult {
  let pos = bit >>> 3;
  let bitbuf = 0;
  let bitcnt = 0;
  // Start mid-byte: preload the remaining bits of the first byte.
  if (bit & 7) {
    if (pos >= input.length) return { stop: 'more', bit };
    bitbuf = input[pos++]! >>> (bit & 7);
    bitcnt = 8 - (bit & 7);
  }
  const bits = (need: number): number => {
    let val = bitbuf;
    while (bitcnt < need) {
      if (pos >= input.length) throw new NeedInput();
      val |= input[pos++]! << bitcnt;
      bitcnt += 8;
    }
    bitbuf = val >>> need;
    bitcnt -= need;
    return val & ((1 << need) - 1);
  };
  const decode = (h: Huffman): number => {
    let code = 0;
    let first = 0;
    let index = 0;
    for (let len = 1; len <= MAXBITS; len++) {
      code |= bits(1);
      const count = h.count[len]!;
      if (code - count < first) return h.symbol[index + (code - first)]!;
      index += count;
      first += count;
      first <<= 1;
      code <<= 1;
    }
    throw new DeflateError('invalid Huffman code');
  };
  const here = (): number => pos * 8 - bitcnt;

  for (;;) {
    const blockStart = here();
    const histStart = hist.length;
    try {
      const final = bits(1) === 1;
      const type = bits(2);
      if (type === 0) {
        // The rest of this byte is padding; LEN/NLEN start at the next byte.
        bitbuf = 0;
        bitcnt = 0;
        return { stop: 'stored', final, offset: pos };
      }
      if (type === 3) throw new DeflateError('reserved block type');
      let lit = FIXED.lit;
      let dist = FIXED.dist;
      if (type === 2) {
        const nlen = bits(5) + 257;
        const ndist = bits(5) + 1;
        const ncode = bits(4) + 4;
        if (nlen > 286 || ndist > 30) throw new DeflateError('bad code counts');
        const lengths = new Uint8Array(320);
        for (let i = 0; i < ncode; i++) lengths[CLORDER[i]!] = bits(3);
        const lencode = build(lengths, 19);
        lengths.fill(0);
        for (let i = 0; i < nlen + ndist; ) {
          const sym = decode(lencode);
          if (sym < 16) lengths[i++] = sym;
          else {
            let len = 0;
            let rep: number;
            if (sym === 16) {
              if (i === 0) throw new DeflateError('repeat with no first length');
              len = lengths[i - 1]!;
              rep = 3 + bits(2);
            } else if (sym === 17) rep = 3 + bits(3);
            else rep = 11 + bits(7);
            if (i + rep > nlen + ndist) throw new DeflateError('too many lengths');
            while (rep--) lengths[i++] = len;
          }
        }
        if (lengths[256] === 0) throw new DeflateError('no end-of-block code');
        lit = build(lengths.subarray(0, nlen), nlen);
        dist = build(lengths.subarray(nlen, nlen + ndist), ndist);
      }
      for (;;) {
        let sym = decode(lit);
        if (sym < 256) hist.push(sym);
        else if (sym === 256) break;
        else {
          sym -= 257;
          if (sym >= 29) throw new DeflateError('invalid length symbol');
          const len = LBASE[sym]! + bits(LEXT[sym]!);
          const ds = decode(dist);
          if (ds >= 30) throw new DeflateError('invalid distance symbol');
          hist.copy(DBASE[ds]! + bits(DEXT[ds]!), len);
        }
        if (hist.decoded > maxOut) return { stop: 'budget' };
      }
      if (final) return { stop: 'end', offset: pos };
    } catch (err) {
      if (!(err instanceof NeedInput)) throw err;
      hist.length = histStart;
      return { stop: 'more', bit: blockStart };
    }
  }
}
