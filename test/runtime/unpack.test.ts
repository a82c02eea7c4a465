import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Rechunk } from '../../src/runtime/unpack/rechunk.js';
import { applyLayers, unpackLayer, type UnpackOptions, type UnpackResult } from '../../src/runtime/unpack/index.js';
import { makeSandbox, makeTar, unpackVia, UNPACK_MODES, type UnpackMode, sha256, streamOf, type Sandbox, type TarEntrySpec } from './helpers.js';

const isRoot = process.geteuid?.() === 0;

let sb: Sandbox;
/** Which way the suite being run unpacks (set by each suite's beforeEach). */
let mode: UnpackMode = 'streamed';
beforeEach(async () => {
  sb = await makeSandbox();
});
afterEach(async () => {
  await sb.cleanup();
});

async function unpack(entries: TarEntrySpec[], opts: UnpackOptions = {}): Promise<UnpackResult> {
  return unpackVia(mode, sb.rootfs, streamOf(await makeTar(entries)), opts);
}

/** Every path below the rootfs, sorted, directories with a trailing slash. */
async function tree(dir = sb.rootfs, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const st = await lstat(join(dir, name));
    if (st.isDirectory()) {
      out.push(`${prefix}${name}/`);
      out.push(...(await tree(join(dir, name), `${prefix}${name}/`)));
    } else out.push(`${prefix}${name}`);
  }
  return out;
}

describe.each(UNPACK_MODES)('whiteouts (OCI image spec layer.md) (%s unpack)', (m) => {
  beforeEach(() => {
    mode = m;
  });
  it('deletes lower files and directories and never materialises the marker', async () => {
    await unpack([
      { name: 'a', content: 'a' },
      { name: 'b', content: 'b' },
      { name: 'd/x', content: 'x' },
      { name: 'd/y', content: 'y' },
      { name: 'gone/deep/file', content: 'z' },
    ]);
    const r = await unpack([{ name: '.wh.a' }, { name: 'd/.wh.x' }, { name: '.wh.gone' }]);
    expect(r.whiteouts).toBe(3);
    expect(await tree()).toEqual(['b', 'd/', 'd/y']);
  });

  it("an opaque marker after this layer's own siblings removes only lower content", async () => {
    await unpack([
      { name: 'o/old1', content: 'lower' },
      { name: 'o/sub/old2', content: 'lower' },
      { name: 'o/lowerdir/f', content: 'lower' },
      { name: 'other/kept', content: 'lower' },
    ]);
    await unpack([
      { name: 'o/new1', content: 'upper' },
      { name: 'o/sub/new2', content: 'upper' }, // o/sub exists below too: its lower children go
      { name: 'o/.wh..wh..opq' }, // after the siblings, as some tools write it
    ]);
    expect(await tree()).toEqual(['o/', 'o/new1', 'o/sub/', 'o/sub/new2', 'other/', 'other/kept']);
  });

  it('an opaque marker before its siblings empties the directory first', async () => {
    await unpack([{ name: 'o/old', content: 'lower' }]);
    await unpack([{ name: 'o/', type: 'directory' }, { name: 'o/.wh..wh..opq' }, { name: 'o/new', content: 'upper' }]);
    expect(await tree()).toEqual(['o/', 'o/new']);
  });

  it('a whiteout never removes an entry of its own layer, only lower ones', async () => {
    await unpack([{ name: 'w/lower', content: 'lower' }]);
    await unpack([{ name: 'f', content: 'same layer' }, { name: '.wh.f' }, { name: 'w/upper', content: 'u' }, { name: '.wh.w' }]);
    expect(await readFile(join(sb.rootfs, 'f'), 'utf8')).toBe('same layer');
    expect(await tree()).toEqual(['f', 'w/', 'w/upper']);
  });

  it('a whiteout of something absent is a no-op, and aufs metadata is skipped', async () => {
    const r = await unpack([{ name: 'nothing/.wh.here' }, { name: '.wh..wh.plnk/123.456', content: 'x' }]);
    expect(await tree()).toEqual([]);
    expect(r.skipped).toEqual([expect.objectContaining({ path: '.wh..wh.plnk/123.456', type: 'aufs-metadata' })]);
  });
});

describe.each(UNPACK_MODES)('entry types and replacement (%s unpack)', (m) => {
  beforeEach(() => {
    mode = m;
  });
  it('creates hardlinks inside the root that share the inode', async () => {
    await unpack([
      { name: 'bin/busybox', content: 'binary', mode: 0o755 },
      { name: 'bin/sh', type: 'link', linkname: 'bin/busybox' },
      { name: 'usr/bin/env', type: 'link', linkname: '/bin/busybox' },
    ]);
    const a = await stat(join(sb.rootfs, 'bin/busybox'));
    expect((await stat(join(sb.rootfs, 'bin/sh'))).ino).toBe(a.ino);
    expect((await stat(join(sb.rootfs, 'usr/bin/env'))).ino).toBe(a.ino);
    expect(a.nlink).toBe(3);
  });

  it('a hardlink may target a file from a lower layer, through a symlinked directory inside the root', async () => {
    await unpack([
      { name: 'real/f', content: 'lower' },
      { name: 'alias', type: 'symlink', linkname: '/real' },
    ]);
    await unpack([{ name: 'h', type: 'link', linkname: 'alias/f' }]);
    expect((await stat(join(sb.rootfs, 'h'))).ino).toBe((await stat(join(sb.rootfs, 'real/f'))).ino);
  });

  it('preserves symlink targets verbatim, absolute, relative and dangling', async () => {
    await unpack([
      { name: 'bin/sh', type: 'symlink', linkname: '/bin/busybox' },
      { name: 'lib64', type: 'symlink', linkname: 'usr/lib64' },
      { name: 'dangling', type: 'symlink', linkname: '../../nowhere' },
    ]);
    expect(await readlink(join(sb.rootfs, 'bin/sh'))).toBe('/bin/busybox');
    expect(await readlink(join(sb.rootfs, 'lib64'))).toBe('usr/lib64');
    expect(await readlink(join(sb.rootfs, 'dangling'))).toBe('../../nowhere');
  });

  it('preserves file, symlink and directory mtimes (directories set after their children)', async () => {
    const dirTime = new Date('2001-09-09T01:46:40Z');
    const fileTime = new Date('2010-01-01T00:00:00Z');
    const linkTime = new Date('2011-01-01T00:00:00Z');
    await unpack([
      { name: 'd', type: 'directory', mtime: dirTime, mode: 0o750 },
      { name: 'd/f', content: 'x', mtime: fileTime },
      { name: 'd/l', type: 'symlink', linkname: 'f', mtime: linkTime },
      { name: 'd/sub/g', content: 'y' },
      { name: 'precise', content: 'p', pax: { mtime: '1700000000.25' } },
    ]);
    const d = await stat(join(sb.rootfs, 'd'));
    expect(d.mtimeMs).toBe(dirTime.getTime());
    expect(d.mode & 0o7777).toBe(0o750);
    expect((await stat(join(sb.rootfs, 'd/f'))).mtimeMs).toBe(fileTime.getTime());
    expect((await lstat(join(sb.rootfs, 'd/l'))).mtimeMs).toBe(linkTime.getTime());
    expect((await stat(join(sb.rootfs, 'precise'))).mtimeMs).toBe(1_700_000_000_250);
  });

  it('a non-directory over a directory replaces the tree; a directory over a directory merges and takes the new mode', async () => {
    await unpack([
      { name: 'x/child', content: '1' },
      { name: 'm', type: 'directory', mode: 0o700 },
      { name: 'm/child', content: 'kept' },
      { name: 'f', content: 'file' },
    ]);
    await unpack([
      { name: 'x', content: 'now a file' },
      { name: 'm', type: 'directory', mode: 0o755 },
      { name: 'f', type: 'directory' },
      { name: 'f/inside', content: 'i' },
    ]);
    expect(await readFile(join(sb.rootfs, 'x'), 'utf8')).toBe('now a file');
    expect(await readFile(join(sb.rootfs, 'm/child'), 'utf8')).toBe('kept');
    expect((await stat(join(sb.rootfs, 'm'))).mode & 0o7777).toBe(0o755);
    expect(await tree()).toEqual(['f/', 'f/inside', 'm/', 'm/child', 'x']);
  });

  it('creates missing parents and treats ./ as the root directory', async () => {
    const r = await unpack([
      { name: './', type: 'directory', mode: 0o755 },
      { name: './a/b/c', content: 'deep' },
    ]);
    expect(r.entries).toBe(2);
    expect(await readFile(join(sb.rootfs, 'a/b/c'), 'utf8')).toBe('deep');
    expect((await stat(join(sb.rootfs, 'a/b'))).isDirectory()).toBe(true);
  });

  it('notes security.capability xattrs it cannot apply', async () => {
    const r = await unpack([{ name: 'bin/ping', content: 'x', pax: { 'SCHILY.xattr.security.capability': 'AQAAAgAgAAAAAAAAAAAAAAAAAAA=' } }]);
    expect(r.skipped).toEqual([expect.objectContaining({ path: 'bin/ping', type: 'xattr' })]);
  });
});

describe.each(UNPACK_MODES)('ownership (%s unpack)', (m) => {
  beforeEach(() => {
    mode = m;
  });
  it.runIf(isRoot)('chowns to the header ids as root, and not at all when rootless', async () => {
    await unpack([
      { name: 'owned', content: 'x', uid: 1234, gid: 5678 },
      { name: 'odir', type: 'directory', uid: 42, gid: 43 },
      { name: 'olink', type: 'symlink', linkname: 'owned', uid: 7, gid: 8 },
      { name: 'bigid', content: 'x', pax: { uid: '3000000', gid: '3000001' } },
    ]);
    const f = await stat(join(sb.rootfs, 'owned'));
    expect([f.uid, f.gid]).toEqual([1234, 5678]);
    const d = await stat(join(sb.rootfs, 'odir'));
    expect([d.uid, d.gid]).toEqual([42, 43]);
    const l = await lstat(join(sb.rootfs, 'olink'));
    expect([l.uid, l.gid]).toEqual([7, 8]);
    const b = await stat(join(sb.rootfs, 'bigid'));
    expect([b.uid, b.gid]).toEqual([3_000_000, 3_000_001]);

    await unpack([{ name: 'rootless', content: 'x', uid: 1234, gid: 5678, mode: 0o4755 }], { rootless: true });
    const r = await stat(join(sb.rootfs, 'rootless'));
    expect([r.uid, r.gid, r.mode & 0o7777]).toEqual([0, 0, 0o4755]);
  });

  it.runIf(isRoot)('maps ids through a user-namespace map and refuses unmapped ids', async () => {
    const idMap = {
      uidMappings: [{ containerID: 0, hostID: 100_000, size: 65_536 }],
      gidMappings: [{ containerID: 0, hostID: 200_000, size: 65_536 }],
    };
    await unpack([{ name: 'mapped', content: 'x', uid: 0, gid: 10 }], { idMap });
    const st = await stat(join(sb.rootfs, 'mapped'));
    expect([st.uid, st.gid]).toEqual([100_000, 200_010]);
    await expect(unpack([{ name: 'unmapped', content: 'x', uid: 70_000 }], { idMap })).rejects.toMatchObject({
      code: 'UNSAFE_LAYER_ENTRY',
      reason: expect.stringMatching(/uid 70000 is outside/),
    });
  });
});

/** The tar as three zstd frames with a skippable frame between them. */
function zstdFrames(b: Buffer): Buffer {
  const skippable = Buffer.alloc(8 + 5);
  skippable.writeUInt32LE(0x184d2a50, 0);
  skippable.writeUInt32LE(5, 4);
  const third = Math.ceil(b.length / 3);
  return Buffer.concat([
    zstdCompressSync(b.subarray(0, third)),
    skippable,
    zstdCompressSync(b.subarray(third, 2 * third)),
    zstdCompressSync(b.subarray(2 * third)),
  ]);
}

describe('streams, compression and the diffID', () => {
  const entries: TarEntrySpec[] = [
    { name: 'etc/hostname', content: 'stevedore\n' },
    { name: 'big', content: Buffer.alloc(300_000, 7) },
  ];

  for (const [label, compress, opts] of [
    ['plain tar, auto', (b: Buffer) => b, {}],
    ['gzip, auto', (b: Buffer) => gzipSync(b), {}],
    ['zstd, auto', (b: Buffer) => zstdCompressSync(b), {}],
    ['gzip by media type', (b: Buffer) => gzipSync(b), { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' }],
    ['zstd by media type', (b: Buffer) => zstdCompressSync(b), { mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd' }],
    ['plain by explicit choice', (b: Buffer) => b, { compression: 'none' }],
    // Several frames and a skippable one, as pzstd, `zstd -T` and zstd:chunked write: Node's own
    // zstd stream stops after the first frame, which dropped the rest of the layer.
    ['zstd in several frames, auto', zstdFrames, {}],
    ['zstd in several frames by media type', zstdFrames, { mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd' }],
  ] as const) {
    it(`computes the diffID in-stream as sha256 of the raw tar (${label})`, async () => {
      const raw = await makeTar(entries);
      const r = await unpackLayer(sb.rootfs, streamOf(compress(raw), 1000), opts as UnpackOptions);
      expect(r.diffID).toBe(sha256(raw));
      expect(r.bytes).toBe(raw.length);
      expect(r.entries).toBe(2);
      expect(await readFile(join(sb.rootfs, 'etc/hostname'), 'utf8')).toBe('stevedore\n');
      expect((await stat(join(sb.rootfs, 'big'))).size).toBe(300_000);
    });
  }

  it('reports compression, refuses xz clearly, and fails on corrupt gzip', async () => {
    const raw = await makeTar(entries);
    expect((await unpackLayer(sb.rootfs, streamOf(gzipSync(raw)))).compression).toBe('gzip');
    const xz = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 0, 0]);
    await expect(unpackLayer(sb.rootfs, streamOf(xz))).rejects.toMatchObject({ code: 'UNSUPPORTED', message: /xz/ });
    const corrupt = gzipSync(raw);
    corrupt[corrupt.length - 20] ^= 0xff;
    await expect(unpackLayer(sb.rootfs, streamOf(corrupt))).rejects.toThrow();
    await expect(unpackLayer(sb.rootfs, streamOf(raw.subarray(0, 2000)))).rejects.toThrow(/Unexpected end of data/);
  });

  it('rejects promptly when aborted mid-stream', async () => {
    // A layer that sends its first entry and part of the second, then stalls like a hung registry.
    const raw = await makeTar([
      { name: 'first', content: 'x' },
      { name: 'second', content: Buffer.alloc(100_000) },
    ]);
    const layer = new PassThrough();
    layer.write(raw.subarray(0, 4096));
    const ac = new AbortController();
    const started = Date.now();
    const pending = unpackLayer(sb.rootfs, layer, { signal: ac.signal, compression: 'none' });
    setTimeout(() => ac.abort(), 100);
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    // The stalled stream would hold it forever; the bound is loose for a loaded machine.
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(layer.destroyed).toBe(true);
    expect(existsSync(join(sb.rootfs, 'first'))).toBe(true);

    // Already aborted: nothing is read at all.
    const idle = Readable.from([raw]);
    await expect(unpackLayer(sb.rootfs, idle, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('gathers socket-sized pieces into 1 MiB chunks, same bytes, and lets a slow trickle through', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 5000);
    const pieces: Buffer[] = [];
    for (let o = 0; o < data.length; o += 56 * 1024) pieces.push(data.subarray(o, o + 56 * 1024));
    const out: Buffer[] = [];
    for await (const c of Readable.from(pieces).pipe(new Rechunk(1024 * 1024))) out.push(c as Buffer);
    expect(out.slice(0, -1).every((c) => c.length >= 1024 * 1024)).toBe(true);
    expect(Buffer.concat(out).equals(data)).toBe(true);
    // Less than a chunk, and nothing more for a while: it goes on anyway.
    const slow = new PassThrough();
    const r = slow.pipe(new Rechunk(1024 * 1024, 5));
    const first = new Promise<Buffer>((resolve) => r.once('data', resolve));
    slow.write(Buffer.from('abc'));
    expect((await first).toString()).toBe('abc');
    slow.destroy();
  });

  it('also aborts while the compression is still being sniffed', async () => {
    const layer = new PassThrough();
    const ac = new AbortController();
    const pending = unpackLayer(sb.rootfs, layer, { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('applyLayers applies bottom first, opening each layer only when its turn comes', async () => {
    const l1 = gzipSync(
      await makeTar([
        { name: 'a', content: '1' },
        { name: 'b', content: '1' },
      ]),
    );
    const l2 = await makeTar([{ name: '.wh.a' }, { name: 'b', content: '2' }]);
    const results = await applyLayers(sb.rootfs, [
      { stream: streamOf(l1), mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip' },
      { stream: () => streamOf(l2) },
    ]);
    expect(results.map((r) => r.compression)).toEqual(['gzip', 'none']);
    expect(await tree()).toEqual(['b']);
    expect(await readFile(join(sb.rootfs, 'b'), 'utf8')).toBe('2');
  });
});

describe('resolveInRoot', async () => {
  const { resolveInRoot, splitRootedPath } = await import('../../src/runtime/unpack/index.js');

  it('cleans names lexically and refuses climbing above the root', () => {
    expect(splitRootedPath('/etc//passwd/')).toEqual(['etc', 'passwd']);
    expect(splitRootedPath('./a/./b/../c')).toEqual(['a', 'c']);
    expect(splitRootedPath('a/../..')).toBeNull();
    expect(splitRootedPath('')).toEqual([]);
  });

  it('resolves symlinks as if the root were /', async () => {
    const r = sb.rootfs;
    await mkdir(join(r, 'usr/lib'), { recursive: true });
    await symlink('usr/lib', join(r, 'lib'));
    await symlink('/', join(r, 'rootlink'));
    await symlink('../../../../../..', join(r, 'usr/up'));
    await symlink(sb.outside, join(r, 'host'));
    await writeFile(join(r, 'usr/lib/libc.so'), 'x');
    expect(await resolveInRoot(r, '/lib/libc.so')).toBe(join(r, 'usr/lib/libc.so'));
    expect(await resolveInRoot(r, 'rootlink/rootlink/lib')).toBe(join(r, 'usr/lib'));
    expect(await resolveInRoot(r, 'usr/up/etc')).toBe(join(r, 'etc'));
    expect(await resolveInRoot(r, 'host/sentinel')).toBe(join(r, sb.outside, 'sentinel'));
    expect(await resolveInRoot(r, '../../../../etc/passwd')).toBe(join(r, 'etc/passwd'));
    expect(await resolveInRoot(r, 'missing/../lib')).toBe(join(r, 'usr/lib'));
    expect(await resolveInRoot(r, '')).toBe(r);
    expect(await resolveInRoot(`${r}/`, 'lib')).toBe(join(r, 'usr/lib'));
  });

  it('gives up on symlink loops', async () => {
    await symlink('loop', join(sb.rootfs, 'loop'));
    await expect(resolveInRoot(sb.rootfs, 'loop/x')).rejects.toMatchObject({ code: 'SYMLINK_LOOP' });
  });
});
