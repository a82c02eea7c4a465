/**
 * A small deflate (RFC 1951) decoder for the compressed blocks that sit between stored ones, so
 * FastGunzip can go back to passing stored blocks through after them (zlib, once given a stream,
 * keeps it: a compressed block ends at an arbitrary bit, which only a decoder can find). It is
 * only ever run on a bounded stretch of input with a bounded output (the caller's budget); what
 * it decodes is still hashed into the layer's diffID, so a decoding mistake cannot pass unnoticed.
 */

/** A Huffman code as a lookup table on the next 15 bits: entry = symbol << 4 | code length (0: no code). */
type Table = Uint32Array;

const LBASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LEXT = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DBASE = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577];
const DEXT = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
const CLORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];
const MAXBITS = 15;

export class DeflateError extends Error {}
/** The input ended inside a block: decode again from the block's start with more input. */
class NeedInput extends Error {}

/** Canonical Huffman code (RFC 1951 3.2.2) from code lengths, as a table on bit-reversed codes. */
function build(lengths: ArrayLike<number>, n: number): Table {
  const count = new Uint16Array(MAXBITS + 1);
  for (let i = 0; i < n; i++) count[lengths[i]!]!++;
  count[0] = 0;
  let left = 1;
  for (let len = 1; len <= MAXBITS; len++) {
    left = (left << 1) - count[len]!;
    if (left < 0) throw new DeflateError('over-subscribed Huffman code');
  }
  const next = new Uint16Array(MAXBITS + 2);
  for (let len = 1, code = 0; len <= MAXBITS; len++) {
    code = (code + count[len - 1]!) << 1;
    next[len] = code;
  }
  const table = new Uint32Array(1 << MAXBITS);
  for (let sym = 0; sym < n; sym++) {
    const len = lengths[sym]!;
    if (len === 0) continue;
    const code = next[len]!++;
    let rev = 0;
    for (let i = 0; i < len; i++) rev |= ((code >> i) & 1) << (len - 1 - i);
    const entry = (sym << 4) | len;
    for (let i = rev; i < 1 << MAXBITS; i += 1 << len) table[i] = entry;
  }
  return table;
}

const FIXED = ((): { lit: Table; dist: Table } => {
  const l = new Uint8Array(288);
  l.fill(8, 0, 144);
  l.fill(9, 144, 256);
  l.fill(7, 256, 280);
  l.fill(8, 280, 288);
  return { lit: build(l, 288), dist: build(new Uint8Array(30).fill(5), 30) };
})();

/** LSB-first bit reader over one buffer; throws NeedInput past its end. */
class Bits {
  readonly input: Uint8Array;
  pos: number;
  buf = 0;
  cnt = 0;
  constructor(input: Uint8Array, bit: number) {
    this.input = input;
    this.pos = bit >>> 3;
    if (bit & 7) {
      if (this.pos >= input.length) throw new NeedInput();
      this.buf = input[this.pos++]! >>> (bit & 7);
      this.cnt = 8 - (bit & 7);
    }
  }
  /** Index of the next unread bit. */
  get here(): number {
    return this.pos * 8 - this.cnt;
  }
  need(n: number): void {
    while (this.cnt < n) {
      if (this.pos >= this.input.length) throw new NeedInput();
      this.buf |= this.input[this.pos++]! << this.cnt;
      this.cnt += 8;
    }
  }
  bits(n: number): number {
    if (n === 0) return 0;
    this.need(n);
    const v = this.buf & ((1 << n) - 1);
    this.buf >>>= n;
    this.cnt -= n;
    return v;
  }
  decode(table: Table): number {
    // Up to 15 bits are looked at; near the end of the input, as many as there are (a short code
    // may still be complete).
    while (this.cnt < MAXBITS && this.pos < this.input.length) {
      this.buf |= this.input[this.pos++]! << this.cnt;
      this.cnt += 8;
    }
    const entry = table[this.buf & 0x7fff]!;
    const len = entry & 15;
    if (len === 0) {
      // An unassigned slot, unless the bits that would tell are still to come.
      if (this.cnt < MAXBITS && this.pos >= this.input.length) throw new NeedInput();
      throw new DeflateError('invalid Huffman code');
    }
    if (len > this.cnt) throw new NeedInput();
    this.buf >>>= len;
    this.cnt -= len;
    return entry >>> 4;
  }
  /** Drops the bits left in the current byte (before a stored block's LEN, or the trailer). */
  align(): void {
    this.pos -= this.cnt >>> 3;
    this.buf = 0;
    this.cnt = 0;
  }
}

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
  let r: Bits;
  try {
    r = new Bits(input, bit);
  } catch {
    return { stop: 'more', bit };
  }
  for (;;) {
    const blockStart = r.here;
    const histStart = hist.length;
    try {
      const final = r.bits(1) === 1;
      const type = r.bits(2);
      if (type === 0) {
        // The rest of this byte is padding; LEN/NLEN start at the next byte.
        r.align();
        return { stop: 'stored', final, offset: r.pos };
      }
      if (type === 3) throw new DeflateError('reserved block type');
      let lit = FIXED.lit;
      let dist = FIXED.dist;
      if (type === 2) {
        const nlen = r.bits(5) + 257;
        const ndist = r.bits(5) + 1;
        const ncode = r.bits(4) + 4;
        if (nlen > 286 || ndist > 30) throw new DeflateError('bad code counts');
        const lengths = new Uint8Array(320);
        for (let i = 0; i < ncode; i++) lengths[CLORDER[i]!] = r.bits(3);
        const lencode = build(lengths, 19);
        lengths.fill(0);
        for (let i = 0; i < nlen + ndist; ) {
          const sym = r.decode(lencode);
          if (sym < 16) lengths[i++] = sym;
          else {
            let len = 0;
            let rep: number;
            if (sym === 16) {
              if (i === 0) throw new DeflateError('repeat with no first length');
              len = lengths[i - 1]!;
              rep = 3 + r.bits(2);
            } else if (sym === 17) rep = 3 + r.bits(3);
            else rep = 11 + r.bits(7);
            if (i + rep > nlen + ndist) throw new DeflateError('too many lengths');
            while (rep--) lengths[i++] = len;
          }
        }
        if (lengths[256] === 0) throw new DeflateError('no end-of-block code');
        lit = build(lengths.subarray(0, nlen), nlen);
        dist = build(lengths.subarray(nlen, nlen + ndist), ndist);
      }
      for (;;) {
        let sym = r.decode(lit);
        if (sym < 256) hist.push(sym);
        else if (sym === 256) break;
        else {
          sym -= 257;
          if (sym >= 29) throw new DeflateError('invalid length symbol');
          const len = LBASE[sym]! + r.bits(LEXT[sym]!);
          const ds = r.decode(dist);
          if (ds >= 30) throw new DeflateError('invalid distance symbol');
          hist.copy(DBASE[ds]! + r.bits(DEXT[ds]!), len);
        }
        if (hist.decoded > maxOut) return { stop: 'budget' };
      }
      if (final) {
        r.align();
        return { stop: 'end', offset: r.pos };
      }
    } catch (err) {
      if (!(err instanceof NeedInput)) throw err;
      hist.length = histStart;
      return { stop: 'more', bit: blockStart };
    }
  }
}
