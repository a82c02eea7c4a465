import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { GoBuildInfoScanner, goPackages } from '../../../src/sbom/catalogers/golang.js';
import { assertContract, type FuzzTarget } from '../lib/target.js';
import { Rng } from '../lib/rng.js';

const MAGIC = Buffer.from('\xff Go buildinf:', 'latin1');

function uvarint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** An executable-looking file with a build-info blob at a 16-byte aligned offset. */
export function goBinary(goVersion: string, modinfo: string, opts: { pad?: number; flags?: number; ptrSize?: number; head?: Buffer } = {}): Buffer {
  const head = opts.head ?? Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
  const pad = Buffer.alloc((opts.pad ?? 1) * 16 - head.length);
  const header = Buffer.alloc(32);
  MAGIC.copy(header);
  header[14] = opts.ptrSize ?? 8;
  header[15] = opts.flags ?? 0x2;
  const sentinel = Buffer.alloc(16, 0x30);
  const framed = Buffer.concat([sentinel, Buffer.from(modinfo), Buffer.from('\n'), sentinel]);
  const v = Buffer.from(goVersion);
  return Buffer.concat([head, pad, header, uvarint(v.length), v, uvarint(framed.length), framed, Buffer.alloc(32)]);
}

function scan(input: Buffer, chunks: number[]): ReturnType<GoBuildInfoScanner['finish']> {
  const s = new GoBuildInfoScanner();
  let at = 0;
  for (const n of chunks) {
    if (at >= input.length) break;
    s.push(input.subarray(at, at + n));
    at += n;
  }
  if (at < input.length) s.push(input.subarray(at));
  return s.finish();
}

const modline = fc.oneof(
  fc.constantFrom(
    'path\texample.com/app',
    'mod\texample.com/app\t(devel)\t',
    'dep\tgolang.org/x/sys\tv0.1.0\th1:abc=',
    '=>\t./local\t',
    '=>\texample.com/fork\tv1.0.0\th1:x=',
    'build\t-compiler=gc',
    'build\tGOOS=linux',
    'dep\t\t',
    'mod',
  ),
  fc.string({ maxLength: 30 }),
);

export const goBuildinfoTarget: FuzzTarget = {
  name: 'go-buildinfo',
  contract:
    'any bytes, in any chunking → the same build info (or none) as read in one piece, and packages with non-empty names; never throws; ≤ 250 ms + 20 ms/KiB',
  sources: ['src/sbom/catalogers/golang.ts'],
  dictionary: [
    '\xff Go buildinf:',
    '\x7fELF',
    'MZ',
    '\xfe\xed\xfa\xcf',
    'go1.22.1',
    'devel',
    '\tpath\t',
    '\nmod\t',
    '\ndep\t',
    '\n=>\t',
    '\nbuild\t',
    '\x08\x02',
    '\x04\x00',
    '\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01',
  ],
  generate: fc
    .tuple(
      fc.constantFrom('go1.22.1', 'go1.9', 'devel go1.23', 'gccgo', ''),
      fc.array(modline, { maxLength: 8 }),
      fc.integer({ min: 1, max: 8 }),
      fc.constantFrom(0x2, 0x0, 0x3),
      fc.constantFrom(8, 4, 3),
    )
    .map(([v, lines, pad, flags, ptr]) => new Uint8Array(goBinary(v, lines.join('\n'), { pad, flags, ptrSize: ptr }))),
  maxLength: 64 * 1024,
  run(input) {
    const buf = Buffer.from(input);
    const whole = scan(buf, [buf.length]);
    const rng = new Rng(buf.length * 31 + (buf[0] ?? 0));
    const chunks = Array.from({ length: 64 }, () => 1 + rng.below(rng.chance(0.5) ? 8 : 64));
    const pieces = scan(buf, chunks);
    assertContract(
      isDeepStrictEqual(whole, pieces),
      `chunked scan differs: ${JSON.stringify(whole)?.slice(0, 120)} vs ${JSON.stringify(pieces)?.slice(0, 120)}`,
    );
    if (whole) {
      for (const p of goPackages(whole))
        assertContract(typeof p.name === 'string' && p.name !== '' && typeof p.version === 'string', `package without a name: ${JSON.stringify(p)}`);
    }
  },
};
