import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packContext } from '../../src/build/remote/pack.js';
import { readTar } from '../../src/util/tar/read.js';

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('packContext (a build context as a gzip tar, written with the one tar writer)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pack-'));
    await mkdir(join(dir, 'ctx/src/node_modules'), { recursive: true });
    await writeFile(join(dir, 'ctx/Containerfile'), 'FROM scratch\n');
    await writeFile(join(dir, 'ctx/src/b.txt'), 'b');
    await writeFile(join(dir, 'ctx/src/a.txt'), 'a');
    await writeFile(join(dir, 'ctx/src/node_modules/x.js'), 'x');
    await symlink('a.txt', join(dir, 'ctx/src/link'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  const ignore = { ignored: (p: string) => p === 'src/node_modules' || p === 'Containerfile' };

  it('packs sorted entries owned by 0:0, leaves ignored paths out but keeps what it is told to, and reports both digests', async () => {
    const out = join(dir, 'ctx.tar.gz');
    const packed = await packContext(join(dir, 'ctx'), out, { ignore, keep: ['./Containerfile'] });
    const gz = await readFile(out);
    const tar = gunzipSync(gz);
    expect(packed).toMatchObject({ digest: sha256(gz), diffID: sha256(tar), size: gz.length, files: 3 });
    const entries: [string, string | null | undefined, number | undefined][] = [];
    await readTar(Readable.from([tar]), async (e) => {
      entries.push([e.header.name, e.header.type, e.header.uid]);
    });
    expect(entries).toEqual([
      ['Containerfile', 'file', 0],
      ['src/', 'directory', 0],
      ['src/a.txt', 'file', 0],
      ['src/b.txt', 'file', 0],
      ['src/link', 'symlink', 0],
    ]);
  });

  it('walks an ignored directory for exceptions without writing its own entry', async () => {
    const out = join(dir, 'exc.tar.gz');
    const except = { ignored: (p: string) => p === 'src' || (p.startsWith('src/') && p !== 'src/a.txt'), hasExceptions: true };
    await packContext(join(dir, 'ctx'), out, { ignore: except });
    const names: string[] = [];
    await readTar(Readable.from([gunzipSync(await readFile(out))]), async (e) => {
      names.push(e.header.name);
    });
    expect(names).toEqual(['Containerfile', 'src/a.txt']);
  });

  it('gives the same bytes for the same tree', async () => {
    const a = await packContext(join(dir, 'ctx'), join(dir, 'a.tgz'), { ignore });
    const b = await packContext(join(dir, 'ctx'), join(dir, 'b.tgz'), { ignore });
    expect(a.digest).toBe(b.digest);
  });
});
