import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, chown, link, mkdir, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeLayer } from '../../src/build/layers/tar-writer.js';
import { compareEntryNames, type LayerEntry } from '../../src/build/layers/entry.js';
import { entryFromStat } from '../../src/build/layers/fs-entry.js';
import { lstat, readdir } from 'node:fs/promises';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { byName, checkDigests, gnuTarList, readLayer } from './fixtures-layers/read-layer.js';

const tmp = new TempDirs();
afterAll(() => tmp.cleanup());

async function treeEntries(root: string, rel = ''): Promise<LayerEntry[]> {
  const out: LayerEntry[] = [];
  for (const name of await readdir(join(root, rel))) {
    const r = rel ? `${rel}/${name}` : name;
    const st = await lstat(join(root, r));
    const e = await entryFromStat(r, join(root, r), st);
    if (e) out.push(e);
    if (st.isDirectory()) out.push(...(await treeEntries(root, r)));
  }
  return out;
}

async function sampleTree(): Promise<string> {
  const root = await tmp.make('lw-src');
  await mkdir(join(root, 'b/sub'), { recursive: true });
  await writeFile(join(root, 'b/sub/file.txt'), 'hello\n');
  await writeFile(join(root, 'a.txt'), 'a');
  await link(join(root, 'a.txt'), join(root, 'b/hard'));
  await symlink('../a.txt', join(root, 'b/link'));
  const long = 'x'.repeat(120);
  await mkdir(join(root, long));
  await writeFile(join(root, long, `${'y'.repeat(110)}.bin`), Buffer.alloc(70000, 7));
  await writeFile(join(root, 'big-uid'), 'u');
  await chown(join(root, 'big-uid'), 300000, 400000);
  execFileSync('mkfifo', [join(root, 'b/fifo')]);
  await utimes(join(root, 'a.txt'), 1_000, 1_000);
  await writeFile(join(root, 'empty'), '');
  await mkdir(join(root, 'locked'), { mode: 0o000 });
  await chmod(join(root, 'locked'), 0o000);
  await writeFile(join(root, 'nomode'), 'n', { mode: 0o000 });
  return root;
}

describe('deterministic layer tar writer', () => {
  it('writes sorted entries with numeric owners, links, long names and correct digests', async () => {
    const root = await sampleTree();
    const work = await tmp.make('lw-work');
    const layer = await writeLayer(await treeEntries(root), { workDir: work, timestamp: 5_000 });
    expect(layer.empty).toBe(false);
    expect(layer.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
    expect(checkDigests(layer)).toEqual({ digest: layer.digest, diffID: layer.diffID, size: layer.size });
    expect(layer.path).toBe(join(work, `${layer.digest.slice(7)}.tar.gz`));

    const entries = await readLayer(layer.path);
    const names = entries.map((e) => e.name);
    const long = 'x'.repeat(120);
    expect(names).toEqual([
      'a.txt',
      'b/',
      'b/fifo',
      'b/hard',
      'b/link',
      'b/sub/',
      'b/sub/file.txt',
      'big-uid',
      'empty',
      'locked/',
      'nomode',
      `${long}/`,
      `${long}/${'y'.repeat(110)}.bin`,
    ]);
    const m = byName(entries);
    // a.txt sorts first, so it carries the content and b/hard links to it.
    expect(m.get('a.txt')).toMatchObject({ type: 'file', content: 'a', mtime: 1_000 });
    expect(m.get('b/hard')).toMatchObject({ type: 'link', linkname: 'a.txt' });
    expect(m.get('b/link')).toMatchObject({ type: 'symlink', linkname: '../a.txt' });
    expect(m.get('b/fifo')).toMatchObject({ type: 'fifo' });
    expect(m.get('big-uid')).toMatchObject({ uid: 300000, gid: 400000 });
    // Empty files and mode 000 survive as they are.
    expect(m.get('empty')).toMatchObject({ type: 'file', size: 0, content: '' });
    expect(m.get('locked/')).toMatchObject({ type: 'directory', mode: 0 });
    expect(m.get('nomode')).toMatchObject({ type: 'file', mode: 0 });
    // Everything newer than the timestamp is clamped to it; older stays.
    expect(m.get('b/sub/file.txt')?.mtime).toBe(5_000);
    for (const e of entries) expect([e.uname, e.gname]).toEqual(['', '']);

    const listing = gnuTarList(layer.path);
    expect(listing).toHaveLength(13);
    expect(listing.find((l) => l.endsWith(' locked/'))).toMatch(/^d---------/);
    expect(listing.find((l) => l.endsWith('big-uid'))).toMatch(/300000\/400000/);
    expect(listing.find((l) => l.includes('b/hard'))).toMatch(/^hrw.* b\/hard link to a\.txt$/);
  });

  it('gives byte-identical layers for the same tree and timestamp, and different ones for another timestamp', async () => {
    const root = await sampleTree();
    const entries = await treeEntries(root);
    const one = await writeLayer(entries, { workDir: await tmp.make('lw-1'), timestamp: 1_700_000_000 });
    const two = await writeLayer([...entries].reverse(), { workDir: await tmp.make('lw-2'), timestamp: 1_700_000_000 });
    expect(readFileSync(one.path).equals(readFileSync(two.path))).toBe(true);
    expect(two.digest).toBe(one.digest);
    const three = await writeLayer(entries, { workDir: await tmp.make('lw-3'), timestamp: 1_600_000_000 });
    expect(three.digest).not.toBe(one.digest);
  });

  it('writes a plain tar when asked not to compress: digest equals diffID, GNU tar reads it', async () => {
    const root = await sampleTree();
    const entries = await treeEntries(root);
    const plain = await writeLayer(entries, { workDir: await tmp.make('lw-plain'), timestamp: 1_700_000_000, compress: false });
    const gz = await writeLayer(entries, { workDir: await tmp.make('lw-gz'), timestamp: 1_700_000_000 });
    expect(plain.mediaType).toBe('application/vnd.oci.image.layer.v1.tar');
    expect(plain.digest).toBe(plain.diffID);
    expect(plain.diffID).toBe(gz.diffID);
    expect(plain.path.endsWith('.tar')).toBe(true);
    expect(plain.size).toBe(readFileSync(plain.path).length);
    expect(execFileSync('tar', ['-tf', plain.path], { encoding: 'utf8' }).trim().split('\n')).toHaveLength(entries.length);
  });

  it('compresses big layers on several cores as gzip members that every reader takes, same bytes whatever the thread count', async () => {
    const root = await tmp.make('lw-big');
    // ~9 MiB of poorly compressible data: three 4 MiB blocks, so three gzip members.
    const big = Buffer.alloc(9 * 1024 * 1024);
    let x = 12345;
    for (let i = 0; i < big.length; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      big[i] = x >>> 24;
    }
    await writeFile(join(root, 'big.bin'), big);
    await writeFile(join(root, 'small.txt'), 'small\n');
    const entries = await treeEntries(root);
    const layers = [];
    for (const gzipThreads of [undefined, 2, 5]) {
      layers.push(await writeLayer(entries, { workDir: await tmp.make('lw-par'), timestamp: 1_700_000_000, ...(gzipThreads ? { gzipThreads } : {}) }));
    }
    const bytes = readFileSync(layers[0].path);
    for (const l of layers.slice(1)) expect(readFileSync(l.path).equals(bytes)).toBe(true);
    expect(checkDigests(layers[0])).toEqual({ digest: layers[0].digest, diffID: layers[0].diffID, size: layers[0].size });
    execFileSync('gzip', ['-t', layers[0].path]);
    expect(gnuTarList(layers[0].path)).toHaveLength(2);
    const out = await tmp.make('lw-par-x');
    execFileSync('tar', ['-C', out, '-xzf', layers[0].path]);
    expect(readFileSync(join(out, 'big.bin')).equals(big)).toBe(true);
    // Several members (gzip magic at each start), unlike the single-stream writer.
    const single = await writeLayer(entries, { workDir: await tmp.make('lw-single'), timestamp: 1_700_000_000, gzipThreads: 1 });
    expect(single.diffID).toBe(layers[0].diffID);
    expect(single.digest).not.toBe(layers[0].digest);
  });

  it('writes an empty layer as a valid empty tar and says so', async () => {
    const layer = await writeLayer([], { workDir: await tmp.make('lw-empty') });
    expect(layer.empty).toBe(true);
    expect(await readLayer(layer.path)).toEqual([]);
    expect(checkDigests(layer).diffID).toBe(layer.diffID);
  });

  it('refuses unclean or duplicate names, and leaves no temp file behind', async () => {
    const work = await tmp.make('lw-bad');
    const e = { type: 'directory' as const, mode: 0o755, uid: 0, gid: 0, mtime: 0 };
    await expect(writeLayer([{ ...e, name: '../etc' }], { workDir: work })).rejects.toThrow(/"\.\.\/etc" is not a clean relative path/);
    await expect(
      writeLayer(
        [
          { ...e, name: 'a' },
          { ...e, name: 'a' },
        ],
        { workDir: work },
      ),
    ).rejects.toThrow(/"a" planned twice/);
    await expect(
      writeLayer([{ name: 'gone', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 3, source: join(work, 'missing') }], { workDir: work }),
    ).rejects.toThrow(/LAYER_WRITE_FAILED|ENOENT/);
    expect(await readdir(work)).toEqual([]);
  });

  it('orders the opaque marker first among its directory and parents before children', () => {
    const names = ['a/z', 'a/.wh..wh..opq', 'a', 'a.b', 'a/-x', 'a/.wh.gone'];
    expect([...names].sort(compareEntryNames)).toEqual(['a', 'a/.wh..wh..opq', 'a/-x', 'a/.wh.gone', 'a/z', 'a.b']);
  });

  it('refuses a file whose size changed since it was planned, small (read at once) or large (streamed), and leaves no layer', async () => {
    const root = await tmp.make('lw-changed');
    for (const [name, size] of [
      ['small', 100],
      ['large', 300 * 1024],
    ] as const) {
      await writeFile(join(root, name), Buffer.alloc(size, 1));
      const [e] = await treeEntries(root).then((all) => all.filter((x) => x.name === name));
      await writeFile(join(root, name), Buffer.alloc(size + 7, 2));
      const work = await tmp.make('lw-changed-work');
      // A large file alone is streamed (nothing to read ahead of): tar-stream's own size check refuses it.
      const message = name === 'small' ? new RegExp(`${name} changed size while the layer was written \\(${size} -> ${size + 7} bytes\\)`) : /Size mismatch/;
      await expect(writeLayer([e!], { workDir: work, compress: false })).rejects.toThrow(message);
      expect(await readdir(work)).toEqual([]);
    }
  });
});
