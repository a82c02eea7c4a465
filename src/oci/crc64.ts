/**
 * CRC-64 with the ISO 3309 polynomial (reflected, 0xD800000000000000), as Go's hash/crc64 computes
 * it with crc64.ISO: tar-split (and so zstd:chunked) records it for every regular file's content.
 * Node has no CRC-64; this is a checksum, not cryptography. The 64-bit state is kept as two 32-bit
 * halves so the per-byte loop stays in small integers (BigInt per byte would be ~100x slower).
 */
const TABLE_LO = new Uint32Array(256);
const TABLE_HI = new Uint32Array(256);
for (let i = 0; i < 256; i++) {
  let lo = i;
  let hi = 0;
  for (let k = 0; k < 8; k++) {
    const carry = lo & 1;
    lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
    hi = hi >>> 1;
    if (carry) hi = (hi ^ 0xd8000000) >>> 0;
  }
  TABLE_LO[i] = lo;
  TABLE_HI[i] = hi;
}

export class Crc64Iso {
  // The state is kept inverted, as Go's update does (^crc before and after).
  #lo = 0xffffffff;
  #hi = 0xffffffff;

  update(data: Uint8Array): this {
    let lo = this.#lo;
    let hi = this.#hi;
    for (let i = 0; i < data.length; i++) {
      const idx = (lo ^ data[i]!) & 0xff;
      lo = ((lo >>> 8) | (hi << 24)) ^ TABLE_LO[idx]!;
      hi = (hi >>> 8) ^ TABLE_HI[idx]!;
    }
    this.#lo = lo >>> 0;
    this.#hi = hi >>> 0;
    return this;
  }

  /** The sum as Go's Hash64.Sum appends it: 8 bytes, big-endian. */
  digest(): Buffer {
    const out = Buffer.alloc(8);
    out.writeUInt32BE(~this.#hi >>> 0, 0);
    out.writeUInt32BE(~this.#lo >>> 0, 4);
    return out;
  }
}
