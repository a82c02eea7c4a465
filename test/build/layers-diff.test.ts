import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { treeDiffLayer, upperToLayer } from '../../src/build/layers/diff.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { gnuTarLayer, snapshot, umociApply } from './fixtures-layers/oci-apply.js';
import { byName, checkDigests, gnuTarList, readLayer } from './fixtures-layers/read-layer.js';

const tmp = new TempDirs();
let base: string;
let lower: string;
let upper: string;
let mergedSnapshot: string[];
let mergedCopy: string;

const sh = (script: string, cwd: string): void => {
  execFileSync('sh', ['-euc', script], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
};

/**
 * A real overlay mount: a lower tree, a RUN-like set of changes made in the merged view (deletions,
 * a directory replaced wholesale, edits, chmod/chown, new files, hardlinks, symlinks, a fifo), then
 * unmounted so its upper directory can be read.
 */
beforeAll(async () => {
  base = await tmp.make('diff');
  sh('mkdir lower upper work merged', base);
  lower = join(base, 'lower');
  upper = join(base, 'upper');
  sh(
    `echo a > a; echo keep > keep; echo m > m; chmod 644 m
     mkdir -p d o gone/sub; echo x > d/x; echo y > d/y; echo p > o/p; echo q > o/q; echo f > gone/sub/f
     ln -s a link; mkdir -m 1777 tmp
     touch -d @1600000000 a keep m d/x d/y o/p o/q gone/sub/f`,
    lower,
  );
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${join(base, 'work')}`, join(base, 'merged')]);
  try {
    sh(
      `rm a; rm -rf gone; rm -rf o; mkdir o; echo new > o/new
       echo changed > d/x; chmod 600 m; chown 1000:1001 keep
       mkdir -p newdir/deep; echo f > newdir/deep/f; ln newdir/deep/f newdir/f2
       rm link; ln -s keep link; mkfifo fifo; echo t > tmp/t`,
      join(base, 'merged'),
    );
    mergedSnapshot = snapshot(join(base, 'merged'));
    mergedCopy = join(base, 'merged-copy');
    execFileSync('cp', ['-a', join(base, 'merged'), mergedCopy]);
  } finally {
    execFileSync('umount', [join(base, 'merged')]);
  }
});
afterAll(() => tmp.cleanup());

describe('upperToLayer', () => {
  it('turns an overlay upper dir into OCI whiteouts, an opaque marker and content', async () => {
    const layer = await upperToLayer(upper, { workDir: await tmp.make('diff-w'), timestamp: 1_700_000_000 });
    expect(checkDigests(layer)).toEqual({ digest: layer.digest, diffID: layer.diffID, size: layer.size });
    const entries = await readLayer(layer.path);
    const m = byName(entries);
    expect(m.get('.wh.a')).toMatchObject({ type: 'file', size: 0, mode: 0 });
    expect(m.get('.wh.gone')).toMatchObject({ type: 'file', size: 0 });
    expect(m.get('o/.wh..wh..opq')).toMatchObject({ type: 'file', size: 0 });
    // The opaque marker follows its directory at once.
    const names = entries.map((e) => e.name);
    expect(names.indexOf('o/.wh..wh..opq')).toBe(names.indexOf('o/') + 1);
    expect(m.get('o/new')).toMatchObject({ content: 'new\n' });
    expect(m.has('o/p')).toBe(false);
    expect(m.get('d/x')).toMatchObject({ content: 'changed\n' });
    expect(m.has('d/y')).toBe(false);
    expect(m.get('m')).toMatchObject({ mode: 0o600 });
    expect(m.get('keep')).toMatchObject({ uid: 1000, gid: 1001 });
    expect(m.get('link')).toMatchObject({ type: 'symlink', linkname: 'keep' });
    expect(m.get('fifo')).toMatchObject({ type: 'fifo' });
    expect(m.get('tmp/')).toMatchObject({ mode: 0o1777 });
    expect(m.get('newdir/f2')).toMatchObject({ type: 'link', linkname: 'newdir/deep/f' });
    for (const e of entries) expect(e.mtime).toBeLessThanOrEqual(1_700_000_000);
    expect(gnuTarList(layer.path).some((l) => l.endsWith(' o/.wh..wh..opq'))).toBe(true);
  });

  it('applied by umoci over the lower layer, gives exactly the merged view', async () => {
    const w = await tmp.make('diff-umoci');
    const layer = await upperToLayer(upper, { workDir: w });
    const base0 = gnuTarLayer(lower, join(w, 'lower.tar.gz'));
    const rootfs = join(w, 'rootfs');
    umociApply([base0, layer], join(w, 'layout'), rootfs);
    expect(snapshot(rootfs)).toEqual(mergedSnapshot);
  });

  it('is byte-identical when made twice with the same timestamp', async () => {
    const one = await upperToLayer(upper, { workDir: await tmp.make('diff-r1'), timestamp: 1_700_000_000 });
    const two = await upperToLayer(upper, { workDir: await tmp.make('diff-r2'), timestamp: 1_700_000_000 });
    expect(readFileSync(one.path).equals(readFileSync(two.path))).toBe(true);
  });

  it('reads the user.overlay.opaque marker of a rootless (userxattr) overlay made in a user namespace', async () => {
    const w = await tmp.make('diff-userns');
    sh('mkdir l u w m l/o; echo p > l/o/p; echo a > l/a', w);
    // As a rootless build does it: root only inside a new user namespace, overlay mounted with userxattr.
    execFileSync(
      'unshare',
      [
        '-U',
        '-r',
        '-m',
        'sh',
        '-euc',
        'mount -t overlay overlay -o userxattr,lowerdir=l,upperdir=u,workdir=w m; rm -rf m/o; mkdir m/o; echo n > m/o/n; rm m/a',
      ],
      {
        cwd: w,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    const m = byName(await readLayer((await upperToLayer(join(w, 'u'), { workDir: w })).path));
    expect([...m.keys()]).toEqual(['.wh.a', 'o/', 'o/.wh..wh..opq', 'o/n']);
  });

  it('names a missing upper directory', async () => {
    await expect(upperToLayer(join(base, 'nope'), { workDir: await tmp.make('diff-x') })).rejects.toThrow(/overlay upper directory .*nope: ENOENT/);
  });
});

describe('treeDiffLayer (no overlay)', () => {
  it('finds additions, changes and removals; umoci over the lower gives the new tree', async () => {
    const w = await tmp.make('diff-tree');
    const layer = await treeDiffLayer(lower, mergedCopy, { workDir: w, timestamp: 1_700_000_000 });
    const m = byName(await readLayer(layer.path));
    expect(m.has('.wh.a')).toBe(true);
    expect(m.has('.wh.gone')).toBe(true);
    expect(m.has('gone/sub/.wh.f')).toBe(false);
    // Unchanged files (another inode after cp -a, same size and mtime, same content) stay out.
    expect(m.has('d/y')).toBe(false);
    expect(m.has('o/q')).toBe(false);
    expect(m.has('o/.wh.p')).toBe(true);
    expect(m.get('d/x')).toMatchObject({ content: 'changed\n' });
    expect(m.get('d/')).toMatchObject({ type: 'directory' });
    expect(m.get('keep')).toMatchObject({ uid: 1000 });
    expect(m.get('link')).toMatchObject({ linkname: 'keep' });
    const rootfs = join(w, 'rootfs');
    umociApply([gnuTarLayer(lower, join(w, 'lower.tar.gz')), layer], join(w, 'layout'), rootfs);
    expect(snapshot(rootfs)).toEqual(mergedSnapshot);
  });

  it('sees a content change that kept size and mtime, and writes nothing for identical trees', async () => {
    const w = await tmp.make('diff-same');
    const a = join(w, 'a');
    const b = join(w, 'b');
    sh('mkdir a; echo 1234 > a/f; echo same > a/g; touch -d @1600000000 a/f a/g; cp -a a b', w);
    expect((await treeDiffLayer(a, b, { workDir: w })).empty).toBe(true);
    await writeFile(join(b, 'f'), '5678\n');
    sh('touch -d @1600000000 b/f', w);
    const m = byName(await readLayer((await treeDiffLayer(a, b, { workDir: w })).path));
    expect([...m.keys()]).toEqual(['f']);
    expect(m.get('f')).toMatchObject({ content: '5678\n' });
  });
});
