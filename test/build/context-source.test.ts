import { execFileSync } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, readlink, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { afterAll, describe, expect, it } from 'vitest';
import { openContext } from '../../src/build/context/source.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';

const tmp = new TempDirs();
afterAll(() => tmp.cleanup());

async function sampleDir(): Promise<string> {
  const dir = await tmp.make('ctx-dir');
  await mkdir(join(dir, 'src'));
  await writeFile(join(dir, 'src/app.txt'), 'app\n');
  await writeFile(join(dir, 'secret.key'), 'k');
  await writeFile(join(dir, '.dockerignore'), '*.key\n');
  await symlink('src/app.txt', join(dir, 'link'));
  return dir;
}

function tarOf(dir: string, compress: string[] = []): string {
  const out = `${dir}.tar${compress.length ? '.x' : ''}`;
  execFileSync('tar', ['-C', dir, ...compress, '-cf', out, '.']);
  return out;
}

async function craftTar(path: string, entries: (Partial<tar.Header> & { name: string })[]): Promise<void> {
  const pack = tar.pack();
  const done = pipeline(pack, createWriteStream(path));
  for (const e of entries) {
    if (e.type === 'file') pack.entry(e, 'x');
    else pack.entry(e);
  }
  pack.finalize();
  await done;
}

describe('openContext', () => {
  it('uses a directory in place, with its ignore file, and cleanup leaves it alone', async () => {
    const dir = await sampleDir();
    const ctx = await openContext(dir);
    expect(ctx.dir).toBe(dir);
    expect(ctx.ignore.ignored('secret.key', false)).toBe(true);
    expect(ctx.ignore.ignored('src/app.txt', false)).toBe(false);
    await ctx.cleanup();
    expect(existsSync(join(dir, 'src/app.txt'))).toBe(true);
  });

  for (const [label, flags] of [
    ['plain tar', []],
    ['gzip tar', ['-z']],
    ['xz tar', ['-J']],
    ['bzip2 tar', ['-j']],
  ] as const) {
    it(`extracts a ${label} into a temp dir (links kept) and cleanup removes it`, async () => {
      const archive = tarOf(await sampleDir(), [...flags]);
      const ctx = await openContext(archive);
      expect(readFileSync(join(ctx.dir, 'src/app.txt'), 'utf8')).toBe('app\n');
      expect(await readlink(join(ctx.dir, 'link'))).toBe('src/app.txt');
      expect(ctx.ignore.ignored('secret.key', false)).toBe(true);
      await ctx.cleanup();
      expect(existsSync(ctx.dir)).toBe(false);
    });
  }

  it('reads a tar from stdin ("-") and honours a Containerfile-specific ignore file inside it', async () => {
    const dir = await sampleDir();
    await writeFile(join(dir, 'Containerfile.containerignore'), 'src\n');
    const stdin = Readable.from([readFileSync(tarOf(dir, ['-z']))]);
    const ctx = await openContext('-', { stdin, containerfile: 'Containerfile' });
    expect(readFileSync(join(ctx.dir, 'secret.key'), 'utf8')).toBe('k');
    expect(ctx.ignore.ignored('src/app.txt', false)).toBe(true);
    expect(ctx.ignore.ignored('secret.key', false)).toBe(false);
    await ctx.cleanup();
    expect(existsSync(dirname(ctx.dir))).toBe(false);
  });

  it('refuses an archive entry that climbs out of the context, and writes nothing outside', async () => {
    const base = await tmp.make('ctx-evil');
    const archive = join(base, 'evil.tar');
    await craftTar(archive, [
      { name: 'ok.txt', type: 'file' },
      { name: '../../escaped.txt', type: 'file' },
    ]);
    const work = await tmp.make('ctx-evil-tmp');
    await expect(openContext(archive, { tmpDir: work })).rejects.toThrow(/build context .*evil\.tar: not a usable tar archive: .*escaped\.txt/);
    expect(existsSync(join(base, 'escaped.txt'))).toBe(false);
    expect(existsSync(join(work, '../escaped.txt'))).toBe(false);
    expect(execFileSync('ls', ['-A', work], { encoding: 'utf8' })).toBe('');
  });

  it('keeps a symlink planted in the archive from redirecting later entries outside', async () => {
    const base = await tmp.make('ctx-evil2');
    const outside = await tmp.make('ctx-outside');
    const archive = join(base, 'evil.tar');
    await craftTar(archive, [
      { name: 'out', type: 'symlink', linkname: outside },
      { name: 'out/planted.txt', type: 'file' },
    ]);
    const ctx = await openContext(archive, { tmpDir: base });
    expect(existsSync(join(outside, 'planted.txt'))).toBe(false);
    // Resolved as if the context were `/`: the absolute target lands inside the context.
    expect(existsSync(join(ctx.dir, outside, 'planted.txt'))).toBe(true);
    await ctx.cleanup();
  });

  it('names a missing context, refuses garbage, and takes an empty stdin as an empty context', async () => {
    await expect(openContext('/nonexistent/ctx')).rejects.toThrow(/build context \/nonexistent\/ctx: no such file or directory/);
    const junk = join(await tmp.make('ctx-junk'), 'junk.tar');
    await writeFile(junk, 'this is not a tar archive at all'.repeat(40));
    await expect(openContext(junk)).rejects.toThrow(/junk\.tar: not a usable tar archive/);
    const stdin = new PassThrough();
    stdin.end();
    const empty = await openContext('-', { stdin });
    expect(execFileSync('ls', ['-A', empty.dir], { encoding: 'utf8' })).toBe('');
    await empty.cleanup();
  });
});
