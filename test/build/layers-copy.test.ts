import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, link, mkdir, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ignoreFromLines } from '../../src/build/context/ignore.js';
import { hashCopyInputs, writeCopyLayer, type CopyRoot, type CopySpec } from '../../src/build/layers/copy.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { byName, checkDigests, gnuTarList, readLayer, type ReadEntry } from './fixtures-layers/read-layer.js';

const tmp = new TempDirs();
afterAll(() => tmp.cleanup());

let ctx: string;
let outside: string;
let target: string;

/** A context with files, a directory tree, links of every kind, and things to ignore. */
beforeAll(async () => {
  ctx = await tmp.make('copy-ctx');
  outside = await tmp.make('copy-outside');
  await writeFile(join(outside, 'secret'), 'outside secret');
  await writeFile(join(ctx, 'a.txt'), 'A');
  await writeFile(join(ctx, 'b.txt'), 'B');
  await writeFile(join(ctx, 'c.md'), 'C');
  await chmod(join(ctx, 'a.txt'), 0o640);
  await mkdir(join(ctx, 'dir/sub'), { recursive: true });
  await chmod(join(ctx, 'dir'), 0o750);
  await writeFile(join(ctx, 'dir/x'), 'X');
  await writeFile(join(ctx, 'dir/sub/y.md'), 'Y');
  await writeFile(join(ctx, 'dir/sub/z.log'), 'Z');
  await link(join(ctx, 'dir/x'), join(ctx, 'dir/sub/x-hard'));
  await symlink('../x', join(ctx, 'dir/sub/rel-link'));
  await symlink('/etc/passwd', join(ctx, 'dir/abs-link'));
  await symlink('a.txt', join(ctx, 'link-to-a'));
  await symlink(join(outside, 'secret'), join(ctx, 'escape-abs'));
  await symlink('../../../../../../../..' + outside + '/secret', join(ctx, 'escape-rel'));
  await mkdir(join(ctx, 'ignored/keep'), { recursive: true });
  await writeFile(join(ctx, 'ignored/drop'), 'd');
  await writeFile(join(ctx, 'ignored/keep/k'), 'k');
  await writeFile(join(ctx, 'dir/sub/secret.key'), 's');
  await mkdir(join(ctx, 'src/app/lib'), { recursive: true });
  await writeFile(join(ctx, 'src/app/lib/m.js'), 'm');
  await writeFile(join(ctx, 'src/app/main.js'), 'main');
  const payload = join(await tmp.make('copy-payload'), 'p');
  await mkdir(join(payload, 'etc'), { recursive: true });
  await writeFile(join(payload, 'etc/conf'), 'conf');
  await symlink('conf', join(payload, 'etc/conf-link'));
  execFileSync('tar', ['-C', payload, '--owner=1234', '--group=5678', '-czf', join(ctx, 'payload.tar.gz'), '.']);
  execFileSync('tar', ['-C', payload, '-cJf', join(ctx, 'payload.tar.xz'), 'etc']);
  const t = 1_600_000_000;
  execFileSync('find', [ctx, '-exec', 'touch', '-h', '-d', `@${t}`, '{}', '+']);

  // A stage rootfs: /tmp 1777, /app a directory, /srv/link -> /app, /etc/file a file.
  target = await tmp.make('copy-target');
  await mkdir(join(target, 'tmp'));
  await chmod(join(target, 'tmp'), 0o1777);
  await mkdir(join(target, 'app'));
  await mkdir(join(target, 'srv'));
  await symlink('/app', join(target, 'srv/link'));
  await symlink('../../../../../../../../tmp', join(target, 'srv/escape'));
  await mkdir(join(target, 'etc'));
  await writeFile(join(target, 'etc/file'), 'old');
});

const root = (): CopyRoot => ({ dir: ctx, ignore: ignoreFromLines(['ignored', '!ignored/keep', '**/*.key'], '.dockerignore') });

async function copy(
  spec: Partial<CopySpec> & Pick<CopySpec, 'sources' | 'dest'>,
  opts: { target?: boolean; root?: CopyRoot } = {},
): Promise<Map<string, ReadEntry>> {
  const layer = await writeCopyLayer(
    opts.root ?? root(),
    { workdir: '/', ...spec },
    { workDir: await tmp.make('copy-work'), timestamp: 1_700_000_000, ...(opts.target ? { targetRootfs: target } : {}) },
  );
  expect(checkDigests(layer)).toEqual({ digest: layer.digest, diffID: layer.diffID, size: layer.size });
  return byName(await readLayer(layer.path));
}

describe('COPY layers: Docker destination rules', () => {
  it('a file into a directory (trailing slash): parents created 0755 root, file owned 0:0 with its own mode', async () => {
    const m = await copy({ sources: ['a.txt'], dest: '/opt/dst/' });
    expect([...m.keys()]).toEqual(['opt/', 'opt/dst/', 'opt/dst/a.txt']);
    expect(m.get('opt/')).toMatchObject({ type: 'directory', mode: 0o755, uid: 0, gid: 0 });
    expect(m.get('opt/dst/a.txt')).toMatchObject({ type: 'file', mode: 0o640, uid: 0, gid: 0, content: 'A', mtime: 1_600_000_000 });
  });

  it('a file to a new name, and a relative destination under the workdir', async () => {
    expect([...(await copy({ sources: ['a.txt'], dest: '/renamed' })).keys()]).toEqual(['renamed']);
    expect([...(await copy({ sources: ['a.txt'], dest: '.', workdir: '/w/d' })).keys()]).toEqual(['w/', 'w/d/', 'w/d/a.txt']);
    expect([...(await copy({ sources: ['a.txt'], dest: 'sub/', workdir: '/w' })).keys()]).toEqual(['w/', 'w/sub/', 'w/sub/a.txt']);
    expect([...(await copy({ sources: ['a.txt'], dest: 'f', workdir: '/w' })).keys()]).toEqual(['w/', 'w/f']);
  });

  it('a directory copies its contents (not itself), keeps symlinks and hardlinks, and hides ignored files', async () => {
    const m = await copy({ sources: ['dir'], dest: '/dst' });
    expect([...m.keys()]).toEqual(['dst/', 'dst/abs-link', 'dst/sub/', 'dst/sub/rel-link', 'dst/sub/x-hard', 'dst/sub/y.md', 'dst/sub/z.log', 'dst/x']);
    // buildah makes the receiving directory like a created parent, whatever the source's mode.
    expect(m.get('dst/')).toMatchObject({ mode: 0o755, uid: 0 });
    expect(m.get('dst/abs-link')).toMatchObject({ type: 'symlink', linkname: '/etc/passwd' });
    expect(m.get('dst/sub/rel-link')).toMatchObject({ type: 'symlink', linkname: '../x' });
    // dst/sub/x-hard sorts first, so it carries the content; dst/x links to it.
    expect(m.get('dst/sub/x-hard')).toMatchObject({ type: 'file', content: 'X' });
    expect(m.get('dst/x')).toMatchObject({ type: 'link', linkname: 'dst/sub/x-hard' });
  });

  it('several sources and wildcards make the destination a directory; wildcards match root-relative paths', async () => {
    expect([...(await copy({ sources: ['a.txt', 'c.md'], dest: '/multi' })).keys()]).toEqual(['multi/', 'multi/a.txt', 'multi/c.md']);
    expect([...(await copy({ sources: ['*.txt'], dest: '/g/' })).keys()]).toEqual(['g/', 'g/a.txt', 'g/b.txt']);
    expect([...(await copy({ sources: ['dir/*/*.md'], dest: '/g/' })).keys()]).toEqual(['g/', 'g/y.md']);
    // A matched directory copies its contents.
    expect([...(await copy({ sources: ['s?c'], dest: '/g/' })).keys()]).toEqual(['g/', 'g/app/', 'g/app/lib/', 'g/app/lib/m.js', 'g/app/main.js']);
  });

  it('a symlink named as the source is followed inside the context; one leading outside is not found', async () => {
    const m = await copy({ sources: ['link-to-a'], dest: '/d/' });
    expect(m.get('d/link-to-a')).toMatchObject({ type: 'file', content: 'A' });
    await expect(copy({ sources: ['escape-abs'], dest: '/d/' })).rejects.toThrow(/COPY source "escape-abs": not found in the build context/);
    await expect(copy({ sources: ['escape-rel'], dest: '/d/' })).rejects.toThrow(/COPY source "escape-rel": not found in the build context/);
  });

  it('refuses sources that climb out of the context and names missing sources', async () => {
    await expect(copy({ sources: ['../etc/passwd'], dest: '/d/' })).rejects.toThrow(/COPY source "\.\.\/etc\/passwd" points outside the build context/);
    await expect(copy({ sources: ['dir/../../x'], dest: '/d/' })).rejects.toThrow(/points outside the build context/);
    await expect(copy({ sources: ['nope.txt'], dest: '/d/' })).rejects.toThrow(/COPY source "nope\.txt": not found in the build context/);
    await expect(copy({ sources: ['*.nope'], dest: '/d/' })).rejects.toThrow(/COPY source "\*\.nope": no file in the build context matches/);
    await expect(copy({ sources: ['a.txt'], dest: '/' })).resolves.toBeDefined();
    await expect(copy({ sources: ['/usr/bin/none'], dest: '/d/' }, { root: { dir: ctx, what: 'stage "builder"' } })).rejects.toThrow(
      /COPY source "\/usr\/bin\/none": not found in stage "builder"/,
    );
    // Hidden by the ignore file means absent.
    await expect(copy({ sources: ['dir/sub/secret.key'], dest: '/d/' })).rejects.toThrow(/not found in the build context/);
    await expect(copy({ sources: ['ignored/drop'], dest: '/d/' })).rejects.toThrow(/not found in the build context/);
  });

  it('an ignored directory with an exception contributes only the re-included part', async () => {
    const m = await copy({ sources: ['.'], dest: '/all/' });
    expect(m.has('all/ignored/keep/k')).toBe(true);
    expect(m.has('all/ignored/')).toBe(true);
    expect(m.has('all/ignored/drop')).toBe(false);
    expect(m.has('all/dir/sub/secret.key')).toBe(false);
  });

  it('--chown owns copied files and created parents; --chmod sets copied modes; --exclude drops matches', async () => {
    const m = await copy({ sources: ['dir'], dest: '/o/p/', chown: { uid: 1000, gid: 1001 }, chmod: 0o700, exclude: ['**/*.log', 'sub/y.md', '*.nothing'] });
    expect(m.get('o/')).toMatchObject({ uid: 1000, gid: 1001, mode: 0o755 });
    expect(m.get('o/p/')).toMatchObject({ uid: 1000, gid: 1001, mode: 0o755 });
    expect(m.get('o/p/sub/')).toMatchObject({ uid: 1000, gid: 1001, mode: 0o700 });
    expect(m.get('o/p/x')).toMatchObject({ uid: 1000, gid: 1001, mode: 0o700 });
    expect(m.get('o/p/sub/rel-link')).toMatchObject({ uid: 1000, gid: 1001, type: 'symlink' });
    expect(m.has('o/p/sub/z.log')).toBe(false);
    expect(m.has('o/p/sub/y.md')).toBe(false);
    // Patterns read as .dockerignore lines: a single * stays within one directory level.
    const shallow = await copy({ sources: ['dir'], dest: '/s/', exclude: ['*.log'] });
    expect(shallow.has('s/sub/z.log')).toBe(true);
    const f = await copy({ sources: ['*.txt', 'c.md'], dest: '/e/', exclude: ['b.*'] });
    expect([...f.keys()]).toEqual(['e/', 'e/a.txt', 'e/c.md']);
  });

  it('--parents keeps the source path (after a /./ pivot) under the destination', async () => {
    expect([...(await copy({ sources: ['src/app/main.js', 'dir/x'], dest: '/p/', parents: true })).keys()]).toEqual([
      'p/',
      'p/dir/',
      'p/dir/x',
      'p/src/',
      'p/src/app/',
      'p/src/app/main.js',
    ]);
    expect([...(await copy({ sources: ['./src/./app/lib'], dest: '/q', parents: true })).keys()]).toEqual(['q/', 'q/app/', 'q/app/lib/', 'q/app/lib/m.js']);
  });

  it('ADD unpacks local archives (gzip, xz) keeping their owners and links; COPY copies them as files', async () => {
    const m = await copy({ sources: ['payload.tar.gz'], dest: '/x', add: true });
    expect(m.get('x/etc/conf')).toMatchObject({ type: 'file', content: 'conf', uid: 1234, gid: 5678 });
    expect(m.get('x/etc/conf-link')).toMatchObject({ type: 'symlink', linkname: 'conf' });
    // The archive's `./` entry gives the destination its owner, as buildah does.
    expect(m.get('x/')).toMatchObject({ type: 'directory', uid: 1234, gid: 5678 });
    const xz = await copy({ sources: ['payload.tar.xz'], dest: '/y/', add: true });
    expect(xz.get('y/etc/conf')).toMatchObject({ content: 'conf' });
    expect(xz.get('y/')).toMatchObject({ mode: 0o755, uid: 0, gid: 0 });
    const plain = await copy({ sources: ['payload.tar.gz'], dest: '/z/' });
    expect([...plain.keys()]).toEqual(['z/', 'z/payload.tar.gz']);
    // ADD of a file that is not an archive copies it.
    expect([...(await copy({ sources: ['a.txt'], dest: '/w/', add: true })).keys()]).toEqual(['w/', 'w/a.txt']);
  });
});

describe('COPY layers against the stage rootfs', () => {
  it('keeps existing parents as they are (/tmp stays 1777) and copies into an existing directory named without a slash', async () => {
    const m = await copy({ sources: ['a.txt'], dest: '/tmp/new/', chown: { uid: 7, gid: 7 } }, { target: true });
    expect(m.get('tmp/')).toMatchObject({ mode: 0o1777, uid: 0 });
    expect(m.get('tmp/new/')).toMatchObject({ mode: 0o755, uid: 7 });
    const d = await copy({ sources: ['a.txt'], dest: '/app' }, { target: true });
    expect([...d.keys()]).toEqual(['app/', 'app/a.txt']);
    // Without the rootfs the same instruction names a file.
    expect([...(await copy({ sources: ['a.txt'], dest: '/app' })).keys()]).toEqual(['app']);
  });

  it('resolves symlinks in the destination inside the rootfs', async () => {
    const m = await copy({ sources: ['a.txt'], dest: '/srv/link/' }, { target: true });
    expect([...m.keys()]).toEqual(['app/', 'app/a.txt']);
    const f = await copy({ sources: ['a.txt'], dest: '/srv/link/renamed' }, { target: true });
    expect([...f.keys()]).toEqual(['app/', 'app/renamed']);
    // A link climbing out of the rootfs stops at its root: the host's /tmp is never the target.
    const e = await copy({ sources: ['a.txt'], dest: '/srv/escape/', workdir: '/' }, { target: true });
    expect([...e.keys()]).toEqual(['tmp/', 'tmp/a.txt']);
    expect(e.get('tmp/')).toMatchObject({ mode: 0o1777 });
    // A destination with .. stays below / too.
    expect([...(await copy({ sources: ['a.txt'], dest: '../../../x/' })).keys()]).toEqual(['x/', 'x/a.txt']);
  });
});

describe('COPY layers: reproducibility and cache keys', () => {
  it('is byte-identical when written twice with the same timestamp, and readable by GNU tar', async () => {
    const spec: CopySpec = { sources: ['.'], dest: '/r/', workdir: '/' };
    const one = await writeCopyLayer(root(), spec, { workDir: await tmp.make('copy-r1'), timestamp: 1_700_000_000 });
    const two = await writeCopyLayer(root(), spec, { workDir: await tmp.make('copy-r2'), timestamp: 1_700_000_000 });
    expect(readFileSync(one.path).equals(readFileSync(two.path))).toBe(true);
    const listing = gnuTarList(one.path);
    expect(listing.some((l) => /^lrwxrwxrwx 0\/0 .* r\/dir\/abs-link -> \/etc\/passwd$/.test(l))).toBe(true);
    const out = await tmp.make('copy-untar');
    execFileSync('tar', ['-C', out, '-xzf', one.path]);
    expect(readFileSync(join(out, 'r/dir/sub/x-hard'), 'utf8')).toBe('X');
    expect(readFileSync(join(out, 'r/link-to-a'), 'utf8')).toBe('A');
  });

  it('hashCopyInputs ignores mtimes and ignored files but sees content, modes, owners and options', async () => {
    const dir = await tmp.make('copy-hash');
    await mkdir(join(dir, 'd'));
    await writeFile(join(dir, 'd/f'), 'one');
    await writeFile(join(dir, 'd/skip.key'), 'k1');
    const r: CopyRoot = { dir, ignore: ignoreFromLines(['*.key', 'd/*.key'], 'ig') };
    const spec: CopySpec = { sources: ['d'], dest: '/x/', workdir: '/' };
    const base = await hashCopyInputs(r, spec);
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    await utimes(join(dir, 'd/f'), 12345, 12345);
    expect(await hashCopyInputs(r, spec)).toBe(base);
    await writeFile(join(dir, 'd/skip.key'), 'k2-changed');
    expect(await hashCopyInputs(r, spec)).toBe(base);
    expect(await hashCopyInputs(r, { ...spec, chown: { uid: 1, gid: 1 } })).not.toBe(base);
    expect(await hashCopyInputs(r, { ...spec, dest: '/y/' })).not.toBe(base);
    await chmod(join(dir, 'd/f'), 0o600);
    const moded = await hashCopyInputs(r, spec);
    expect(moded).not.toBe(base);
    await writeFile(join(dir, 'd/f'), 'two');
    expect(await hashCopyInputs(r, spec)).not.toBe(moded);
    await expect(hashCopyInputs(r, { ...spec, sources: ['missing'] })).rejects.toThrow(/COPY source "missing": not found/);
  });
});
