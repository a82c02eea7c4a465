import type { Rng } from './rng.js';

/**
 * Corpus mutation in the manner of libFuzzer's default mutators, written small: each call stacks one
 * to five edits on a copy of a corpus input. Tokens come from the target's dictionary, so a mutated
 * Containerfile gains `ONBUILD`, `<<EOF` or `${A:-` rather than only random bytes.
 */

/** Bytes and numbers that sit on parsers' edges: delimiters, escapes, NUL, limits of integer types. */
const INTERESTING_BYTES = [0x00, 0x01, 0x09, 0x0a, 0x0d, 0x20, 0x22, 0x27, 0x2c, 0x2f, 0x3a, 0x5b, 0x5c, 0x5d, 0x7b, 0x7d, 0x7f, 0x80, 0xc0, 0xff];
const INTERESTING_NUMBERS = [
  '0',
  '-1',
  '1',
  '255',
  '256',
  '65535',
  '65536',
  '2147483647',
  '4294967295',
  '4294967296',
  '9007199254740993',
  '1e309',
  '-0',
  'NaN',
  '0x10',
  '1.5',
  '00',
];

export interface MutateOptions {
  dictionary: readonly string[];
  maxLength: number;
  /** Other corpus inputs, for splicing. */
  others: readonly Uint8Array[];
}

type Edit = (rng: Rng, b: Buffer, opts: MutateOptions) => Buffer;

const at = (rng: Rng, b: Buffer): number => rng.below(b.length + 1);

const edits: Edit[] = [
  // Flip one bit.
  (rng, b) => {
    if (b.length === 0) return b;
    const i = rng.below(b.length);
    b[i] = b[i]! ^ (1 << rng.below(8));
    return b;
  },
  // Set a byte to a random or an interesting value.
  (rng, b) => {
    if (b.length === 0) return Buffer.from([rng.pick(INTERESTING_BYTES)]);
    b[rng.below(b.length)] = rng.chance(0.5) ? rng.below(256) : rng.pick(INTERESTING_BYTES);
    return b;
  },
  // Delete a range.
  (rng, b) => {
    if (b.length === 0) return b;
    const i = rng.below(b.length);
    const n = 1 + rng.below(Math.min(64, b.length - i));
    return Buffer.concat([b.subarray(0, i), b.subarray(i + n)]);
  },
  // Insert random bytes.
  (rng, b) => {
    const i = at(rng, b);
    const n = 1 + rng.below(8);
    const ins = Buffer.alloc(n);
    for (let k = 0; k < n; k++) ins[k] = rng.chance(0.5) ? rng.below(256) : rng.pick(INTERESTING_BYTES);
    return Buffer.concat([b.subarray(0, i), ins, b.subarray(i)]);
  },
  // Insert a dictionary token.
  (rng, b, o) => {
    if (o.dictionary.length === 0) return b;
    const i = at(rng, b);
    return Buffer.concat([b.subarray(0, i), Buffer.from(rng.pick(o.dictionary)), b.subarray(i)]);
  },
  // Overwrite with a dictionary token.
  (rng, b, o) => {
    if (o.dictionary.length === 0 || b.length === 0) return b;
    const tok = Buffer.from(rng.pick(o.dictionary));
    const i = rng.below(b.length);
    const out = Buffer.from(b);
    tok.copy(out, i, 0, Math.min(tok.length, out.length - i));
    return out;
  },
  // Replace a run of digits with an interesting number.
  (rng, b) => {
    const s = b.toString('latin1');
    const runs = [...s.matchAll(/-?\d+(?:\.\d+)?/g)];
    if (runs.length === 0) return b;
    const m = rng.pick(runs);
    return Buffer.from(s.slice(0, m.index) + rng.pick(INTERESTING_NUMBERS) + s.slice(m.index! + m[0].length), 'latin1');
  },
  // Repeat a chunk (deep nesting, long lines, many entries).
  (rng, b) => {
    if (b.length === 0) return b;
    const i = rng.below(b.length);
    const n = 1 + rng.below(Math.min(32, b.length - i));
    const chunk = b.subarray(i, i + n);
    const times = 2 + rng.below(rng.chance(0.2) ? 512 : 16);
    return Buffer.concat([b.subarray(0, i), ...Array.from({ length: times }, () => chunk), b.subarray(i)]);
  },
  // Copy a chunk elsewhere.
  (rng, b) => {
    if (b.length < 2) return b;
    const i = rng.below(b.length);
    const n = 1 + rng.below(Math.min(64, b.length - i));
    const j = at(rng, b);
    return Buffer.concat([b.subarray(0, j), Buffer.from(b.subarray(i, i + n)), b.subarray(j)]);
  },
  // Truncate.
  (rng, b) => b.subarray(0, rng.below(b.length + 1)),
  // Splice: the head of this input with the tail of another.
  (rng, b, o) => {
    if (o.others.length === 0) return b;
    const other = Buffer.from(rng.pick(o.others));
    return Buffer.concat([b.subarray(0, at(rng, b)), other.subarray(rng.below(other.length + 1))]);
  },
  // Swap two bytes.
  (rng, b) => {
    if (b.length < 2) return b;
    const i = rng.below(b.length);
    const j = rng.below(b.length);
    const t = b[i]!;
    b[i] = b[j]!;
    b[j] = t;
    return b;
  },
];

/** A mutated copy of `input`: one to five stacked edits, cut to `maxLength`. */
export function mutate(rng: Rng, input: Uint8Array, opts: MutateOptions): Uint8Array {
  let b: Buffer = Buffer.from(input);
  const n = 1 + rng.below(rng.chance(0.3) ? 5 : 2);
  for (let k = 0; k < n; k++) b = rng.pick(edits)(rng, b, opts);
  if (b.length > opts.maxLength) b = b.subarray(0, opts.maxLength);
  return new Uint8Array(b);
}
