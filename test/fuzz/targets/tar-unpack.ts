import { existsSync, lstatSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { unpackLayer } from '../../../src/runtime/unpack/index.js';
import { StevedoreError } from '../../../src/util/errors.js';
import { assertContract, type FuzzTarget } from '../lib/target.js';
import { writeTar, type RawTarEntry } from '../lib/tar-writer.js';

/**
 * Each case unpacks into BASE/case/root, next to BASE/case/outside (a sentinel file and directory)
 * and with symlinks planted in the root by "an earlier layer" that point outside, relatively and
 * absolutely. After the case, nothing outside the root may have changed, and no file in the root
 * may share an inode with one outside (a hard link out).
 */
// In memory where there is a tmpfs: every case creates and removes a small tree.
const BASE = join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), `stevedore-fuzz-tar-${process.pid}`);
const CASE = join(BASE, 'case');
const ROOT = join(CASE, 'root');
export const OUTSIDE = join(CASE, 'outside');

type Snapshot = Map<string, string>;

function snapshot(dir: string, out: Snapshot = new Map()): Snapshot {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    out.set(p, `${st.mode}:${st.size}:${st.mtimeMs}:${st.uid}:${st.gid}:${st.nlink}:${st.ino}`);
    if (st.isDirectory()) snapshot(p, out);
  }
  return out;
}

function walk(dir: string, visit: (p: string) => void): void {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    visit(p);
    if (lstatSync(p).isDirectory()) walk(p, visit);
  }
}

let outsideBefore: Snapshot = new Map();
let outsideInodes = new Set<number>();

function prepare(): void {
  rmSync(CASE, { recursive: true, force: true });
  mkdirSync(join(OUTSIDE, 'dir'), { recursive: true });
  writeFileSync(join(OUTSIDE, 'sentinel'), 'do not touch');
  mkdirSync(join(ROOT, 'etc'), { recursive: true });
  writeFileSync(join(ROOT, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
  symlinkSync('../outside', join(ROOT, 'up'));
  symlinkSync(OUTSIDE, join(ROOT, 'abs'));
  symlinkSync('/', join(ROOT, 'slash'));
  outsideBefore = snapshot(OUTSIDE);
  outsideInodes = new Set([...readdirSync(OUTSIDE)].map((n) => lstatSync(join(OUTSIDE, n)).ino));
}

const segment = fc.constantFrom(
  'a',
  'b',
  'etc',
  'passwd',
  'up',
  'abs',
  'slash',
  '..',
  '.',
  '',
  'outside',
  'sentinel',
  'dir',
  '.wh.a',
  '.wh.up',
  '.wh..wh..opq',
  '.wh..wh.plnk',
  'x'.repeat(120),
);
const path = fc.tuple(fc.boolean(), fc.array(segment, { minLength: 1, maxLength: 4 })).map(([abs, parts]) => `${abs ? '/' : ''}${parts.join('/')}`);
const entry: fc.Arbitrary<RawTarEntry> = fc.record({
  name: path,
  type: fc.constantFrom('0', '0', '5', '2', '1', '3', '4', '6', '7', 'g', 'L', 'K', 'S', 'Z'),
  content: fc.uint8Array({ maxLength: 64 }),
  linkname: fc.oneof(path, fc.constantFrom(OUTSIDE, join(OUTSIDE, 'sentinel'), '../../outside/sentinel', '/', '')),
  mode: fc.constantFrom(0o644, 0o755, 0o4755, 0o777, 0o7777, 0o000, 0o170000),
  uid: fc.constantFrom(0, 1000, 65534, 0o7777777),
  gid: fc.constantFrom(0, 1000),
  pax: fc.dictionary(
    fc.constantFrom('path', 'linkpath', 'uid', 'gid', 'mtime', 'size', 'SCHILY.xattr.user.x', 'SCHILY.xattr.security.capability'),
    fc.oneof(path, fc.constantFrom('-1', '1e30', 'NaN', '4294967295', '0')),
    { maxKeys: 2 },
  ),
});

export const tarUnpackTarget: FuzzTarget = {
  name: 'tar-unpack',
  contract:
    "any byte stream (tar, gzip, zstd or garbage) → entries applied inside the root or a refusal (a StevedoreError or the tar/zlib decoder's Error); never a write outside the root, never another exception",
  sources: ['src/runtime/unpack/'],
  dictionary: [
    'ustar\0',
    'ustar  \0',
    '00',
    '0000644\0',
    '0000000\0',
    '../',
    '/',
    '.wh.',
    '.wh..wh..opq',
    'PaxHeader',
    ' path=',
    ' linkpath=',
    '\x1f\x8b\x08',
    '\x28\xb5\x2f\xfd',
  ],
  generate: fc.tuple(fc.array(entry, { minLength: 1, maxLength: 6 }), fc.constantFrom('none', 'none', 'gzip', 'truncate')).map(([entries, how]) => {
    const tar = writeTar(entries);
    if (how === 'gzip') return new Uint8Array(gzipSync(tar));
    if (how === 'truncate') return new Uint8Array(tar.subarray(0, Math.max(0, tar.length - 1024 - 7)));
    return new Uint8Array(tar);
  }),
  maxLength: 256 * 1024,
  budget: { baseMs: 1000 },
  async teardown() {
    rmSync(BASE, { recursive: true, force: true });
  },
  async run(input) {
    prepare();
    try {
      await unpackLayer(ROOT, Readable.from([Buffer.from(input)]), { limits: { maxEntries: 10_000, maxBytes: 16 * 1024 * 1024 } });
    } catch (err) {
      // A refusal: our own typed errors, or the decoder's plain Error for a corrupt stream.
      if (!(err instanceof StevedoreError) && !(err instanceof Error && err.constructor === Error)) throw err;
    }
    assertContract(JSON.stringify(readdirSync(BASE)) === '["case"]', `something was written next to the case directory: ${readdirSync(BASE).join(', ')}`);
    assertContract(
      JSON.stringify(readdirSync(CASE).sort()) === '["outside","root"]',
      `something was written next to the root: ${readdirSync(CASE).join(', ')}`,
    );
    const after = snapshot(OUTSIDE);
    for (const [p, v] of outsideBefore) assertContract(after.get(p) === v, `${p} outside the root changed (${v} -> ${after.get(p) ?? 'gone'})`);
    for (const p of after.keys()) assertContract(outsideBefore.has(p), `${p} was created outside the root`);
    walk(ROOT, (p) => {
      const st = lstatSync(p);
      if (st.isFile()) assertContract(!outsideInodes.has(st.ino), `${p} is a hard link to a file outside the root`);
    });
  },
};
