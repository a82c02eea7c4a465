import { execFileSync } from 'node:child_process';
import { chmod, link, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { tarDirectory } from '../../src/build/rootfs-tar.js';
import { readTar, type TarHeader } from '../../src/util/tar/read.js';
import { TarWriter, type TarEntryHeader } from '../../src/util/tar/write.js';
import { writeTar as writeRawTar } from '../fuzz/lib/tar-writer.js';

/** Reads a tar stream back with the one reader: headers and contents. */
async function readBack(stream: Readable): Promise<{ header: TarHeader; data: string }[]> {
  const out: { header: TarHeader; data: string }[] = [];
  await readTar(stream, async (entry) => {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c);
    out.push({ header: entry.header, data: Buffer.concat(chunks).toString() });
  });
  return out;
}

async function written(entries: [TarEntryHeader, (Buffer | Readable)?][]): Promise<{ header: TarHeader; data: string }[]> {
  const tar = new TarWriter();
  const reading = readBack(tar.stream);
  for (const [h, body] of entries) await tar.add(h, body);
  tar.finalize();
  return reading;
}

const T = new Date(1_600_000_000_000);

describe('TarWriter (the one tar writer) read back with readTar (the one reader)', () => {
  it('writes files from memory and from streams, directories with a trailing slash, links, devices', async () => {
    const got = await written([
      [{ name: 'd', type: 'directory', mode: 0o755, mtime: T }],
      [{ name: 'd/a', type: 'file', mode: 0o640, mtime: T, size: 5, uid: 7, gid: 8 }, Buffer.from('hello')],
      [{ name: 'd/b', type: 'file', mode: 0o644, mtime: T, size: 6 }, Readable.from([Buffer.from('str'), Buffer.from('eam')])],
      [{ name: 'd/empty', type: 'file', mode: 0o644, mtime: T }],
      [{ name: 'd/s', type: 'symlink', mode: 0o777, mtime: T, linkname: 'a' }],
      [{ name: 'd/h', type: 'link', mode: 0o640, mtime: T, linkname: 'd/a' }],
      [{ name: 'null', type: 'character-device', mode: 0o666, mtime: T, devmajor: 1, devminor: 3 }],
    ]);
    expect(got.map((e) => [e.header.name, e.header.type, e.data])).toEqual([
      ['d/', 'directory', ''],
      ['d/a', 'file', 'hello'],
      ['d/b', 'file', 'stream'],
      ['d/empty', 'file', ''],
      ['d/s', 'symlink', ''],
      ['d/h', 'link', ''],
      ['null', 'character-device', ''],
    ]);
    expect(got[1].header).toMatchObject({ mode: 0o640, uid: 7, gid: 8, uname: '', gname: '', mtime: T });
    expect(got[4].header.linkname).toBe('a');
    expect(got[5].header.linkname).toBe('d/a');
    expect(got[6].header).toMatchObject({ devmajor: 1, devminor: 3 });
  });

  it('keeps a mode of 0 (tar-stream alone would write 0644 or 0755)', async () => {
    const got = await written([
      [{ name: 'locked', type: 'directory', mode: 0, mtime: T }],
      [{ name: 'secret', type: 'file', mode: 0, mtime: T, size: 1 }, Buffer.from('x')],
    ]);
    expect(got.map((e) => e.header.mode)).toEqual([0, 0]);
  });

  it('writes ids too large for ustar in PAX records instead of truncating them', async () => {
    const got = await written([[{ name: 'f', type: 'file', mode: 0o644, mtime: T, uid: 100_000_000, gid: 262_144 }]]);
    // tar-stream's decoder leaves PAX ids to the caller (the unpacker applies them).
    expect(got[0].header.pax).toMatchObject({ uid: '100000000', gid: '262144' });
    expect(got[0].header).toMatchObject({ uid: 0, gid: 0 });
  });

  it('refuses in-memory content whose length is not the announced size', async () => {
    const tar = new TarWriter();
    tar.stream.resume();
    await expect(tar.add({ name: 'f', type: 'file', mode: 0o644, mtime: T, size: 3 }, Buffer.from('four'))).rejects.toMatchObject({ code: 'SIZE_MISMATCH' });
    tar.destroy();
  });
});

describe('readTar', () => {
  it("refuses a directory announcing data instead of waiting forever for it, with the caller's error", async () => {
    const raw = writeRawTar([
      { name: 'd/', type: '5', pax: { size: '100' } },
      { name: 'f', type: '0', content: Buffer.from('x') },
    ]);
    await expect(readTar(Readable.from([raw]), async () => undefined, { refuse: (name, reason) => new Error(`no: ${name}: ${reason}`) })).rejects.toThrow(
      'no: d/: a directory entry announcing 100 bytes of data',
    );
  });

  it("rejects with the handler's error (mapped by entryError) and stops reading", async () => {
    const raw = writeRawTar([
      { name: 'a', type: '0', content: Buffer.from('1') },
      { name: 'b', type: '0', content: Buffer.from('2') },
      { name: 'c', type: '0', content: Buffer.from('3') },
    ]);
    const seen: string[] = [];
    await expect(
      readTar(
        Readable.from([raw]),
        async (e) => {
          seen.push(e.header.name);
          if (e.header.name === 'b') throw new Error('bad b');
        },
        { entryError: (name, err) => new Error(`${name}: ${(err as Error).message}`) },
      ),
    ).rejects.toThrow('b: bad b');
    expect(seen).toEqual(['a', 'b']);
  });

  it('fails on a truncated tar, and on a source that fails, with their errors', async () => {
    const raw = writeRawTar([{ name: 'a', type: '0', content: Buffer.alloc(2000, 1) }]);
    await expect(readTar(Readable.from([raw.subarray(0, 1024)]), async () => undefined)).rejects.toThrow();
    const failing = new Readable({
      read() {
        this.destroy(new Error('disk on fire'));
      },
    });
    await expect(readTar(failing, async () => undefined)).rejects.toThrow('disk on fire');
  });

  it('stops on abort with the abort reason', async () => {
    const ac = new AbortController();
    const never = new Readable({ read() {} });
    const reading = readTar(never, async () => undefined, { signal: ac.signal });
    ac.abort(new Error('stop'));
    await expect(reading).rejects.toThrow('stop');
    expect(never.destroyed).toBe(true);
  });
});

describe('tarDirectory (rootfs import) through the one writer', () => {
  const dir = mkdtemp(join(tmpdir(), 'tardir-'));
  afterAll(async () => rm(await dir, { recursive: true, force: true }));

  it('keeps a mode-000 file at 000 (it was written as 0644)', async () => {
    const root = join(await dir, 'root');
    await mkdir(root);
    await writeFile(join(root, 'secret'), 'x');
    await chmod(join(root, 'secret'), 0);
    const got = await readBack(tarDirectory(root, { mtime: T }));
    expect(got.map((e) => [e.header.name, e.header.mode])).toEqual([['secret', 0]]);
  });

  it('keeps hardlinks as links and refuses a fifo, naming it', async () => {
    const root = join(await dir, 'links');
    await mkdir(root);
    await writeFile(join(root, 'a'), 'x');
    await link(join(root, 'a'), join(root, 'b'));
    const got = await readBack(tarDirectory(root, { mtime: T }));
    expect(got.map((e) => [e.header.name, e.header.type, e.header.linkname ?? null])).toEqual([
      ['a', 'file', null],
      ['b', 'link', 'a'],
    ]);
    execFileSync('mkfifo', [join(root, 'c')]);
    await expect(readBack(tarDirectory(root, { mtime: T }))).rejects.toThrow(`${join(root, 'c')}: cannot import a device or fifo`);
  });
});
