import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { chmod, chown, link, lstat, mkdir, readdir, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeCopyLayer, type CopyRoot, type CopySpec } from '../../src/build/layers/copy.js';
import { materializeEntries, NotMaterializableError } from '../../src/build/layers/materialize.js';
import { unpackLayer } from '../../src/runtime/unpack/index.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';

const tmp = new TempDirs();
afterAll(() => tmp.cleanup());

let ctx: string;
let lower: string;
const T = 1_650_000_000;

/** Everything about a tree that unpacking a layer decides: type, owner, mode, mtime, content, link target, hardlink groups. */
async function describeTree(root: string): Promise<string[]> {
  const out: string[] = [];
  const groups = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(rel === '' ? root : join(root, rel))).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const p = join(root, r);
      const st = await lstat(p);
      const base = `${r} ${(st.mode & 0o170000).toString(8)} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${Math.floor(st.mtimeMs / 1000)}`;
      if (st.isSymbolicLink()) out.push(`${base} -> ${await readlink(p)}`);
      else if (st.isFile()) {
        const h = createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16);
        const inode = `${st.ino}`;
        const first = groups.get(inode);
        if (first === undefined) groups.set(inode, r);
        out.push(`${base} ${st.size} ${h} nlink=${st.nlink}${first !== undefined ? ` same-as=${first}` : ''}`);
      } else out.push(base);
      if (st.isDirectory()) await walk(r);
    }
  };
  await walk('');
  return out;
}

beforeAll(async () => {
  ctx = await tmp.make('mat-ctx');
  await mkdir(join(ctx, 'dir/sub/deep'), { recursive: true });
  await writeFile(join(ctx, 'dir/a'), 'A');
  await writeFile(join(ctx, 'dir/sub/b'), 'B'.repeat(100_000));
  await writeFile(join(ctx, 'dir/sub/deep/c'), '');
  await writeFile(join(ctx, 'dir/suid'), '#!/bin/sh\n');
  await chmod(join(ctx, 'dir/suid'), 0o4755);
  await chmod(join(ctx, 'dir/sub'), 0o700);
  await link(join(ctx, 'dir/a'), join(ctx, 'dir/sub/a-hard'));
  await symlink('../a', join(ctx, 'dir/sub/rel'));
  await symlink('/nowhere', join(ctx, 'dir/dangling'));
  await writeFile(join(ctx, 'single'), 'single file');
  await chown(join(ctx, 'single'), 1234, 5678);
  execFileSync('find', [ctx, '-exec', 'touch', '-h', '-d', `@${T + 100}`, '{}', '+']);

  // The lower rootfs: things the layers replace or merge with.
  lower = await tmp.make('mat-lower');
  await mkdir(join(lower, 'tmp'));
  await chmod(join(lower, 'tmp'), 0o1777);
  await mkdir(join(lower, 'app/sub'), { recursive: true });
  await writeFile(join(lower, 'app/sub/old'), 'old');
  await writeFile(join(lower, 'app/a'), 'lower a'); // replaced by a file
  await mkdir(join(lower, 'app/suid/inner'), { recursive: true }); // a directory a file replaces
  await writeFile(join(lower, 'app/rel'), 'file a symlink replaces');
  await symlink('/tmp', join(lower, 'app/dangling'));
  await mkdir(join(lower, 'srv'));
  await symlink('/app', join(lower, 'srv/link'));
  execFileSync('find', [lower, '-exec', 'touch', '-h', '-d', `@${T}`, '{}', '+']);
});

async function both(
  root: CopyRoot,
  spec: CopySpec,
  timestamp?: number,
): Promise<{ unpacked: string[]; materialized: string[]; lowerAfter: string[]; lowerBefore: string[] }> {
  const lowerBefore = await describeTree(lower);
  const work = await tmp.make('mat-work');
  const layer = await writeCopyLayer(root, spec, { workDir: work, targetRootfs: lower, ...(timestamp !== undefined ? { timestamp } : {}) });
  expect(layer.entries).toBeDefined();
  const a = join(work, 'a');
  const b = join(work, 'b');
  // As the store and the build make snapshots: a hardlinked copy of the parent.
  execFileSync('cp', ['-al', lower, a]);
  execFileSync('cp', ['-al', lower, b]);
  await unpackLayer(a, createReadStream(layer.path), { mediaType: layer.mediaType });
  await materializeEntries(b, layer.entries!, timestamp !== undefined ? { timestamp } : {});
  return { unpacked: await describeTree(a), materialized: await describeTree(b), lowerBefore, lowerAfter: await describeTree(lower) };
}

describe('materializeEntries gives what unpacking the COPY layer gives', () => {
  it('a directory over existing content (replacing files, directories and symlinks; hardlinks; setuid)', async () => {
    const r = await both({ dir: ctx }, { sources: ['dir/'], dest: '/app/', workdir: '/' });
    expect(r.materialized).toEqual(r.unpacked);
    expect(r.materialized.some((l) => l.startsWith('app/suid 100000 4755'))).toBe(true);
    expect(r.materialized.some((l) => l.includes('same-as=app/a') || (l.startsWith('app/a ') && l.includes('nlink=2')))).toBe(true);
    // The lower tree (shared with the snapshots by hardlinks, hence the link counts) is untouched.
    const content = (lines: string[]): string[] => lines.map((l) => l.replace(/ nlink=\d+/, ''));
    expect(content(r.lowerAfter)).toEqual(content(r.lowerBefore));
  });

  it('with --chown, --chmod and a --timestamp that clamps mtimes', async () => {
    const r = await both({ dir: ctx }, { sources: ['dir/'], dest: '/tmp/x/', workdir: '/', chown: { uid: 10, gid: 20 }, chmod: 0o640 }, T + 50);
    expect(r.materialized).toEqual(r.unpacked);
    expect(r.materialized.find((l) => l.startsWith('tmp '))).toMatch(/^tmp 40000 1777 /);
    expect(r.materialized.find((l) => l.startsWith('tmp/x/a '))).toContain(`10:20 ${T + 50}`);
  });

  it('a single file through a symlinked destination, keeping owners from another stage', async () => {
    const r = await both({ dir: ctx, preserveOwnership: true }, { sources: ['single'], dest: '/srv/link/', workdir: '/' });
    expect(r.materialized).toEqual(r.unpacked);
    expect(r.materialized.find((l) => l.startsWith('app/single '))).toContain('1234:5678');
  });

  it('refuses a source that changed after the layer was planned', async () => {
    const work = await tmp.make('mat-change');
    const src = await tmp.make('mat-change-src');
    await writeFile(join(src, 'f'), 'before');
    const layer = await writeCopyLayer({ dir: src }, { sources: ['f'], dest: '/f', workdir: '/' }, { workDir: work });
    await writeFile(join(src, 'f'), 'after!');
    const rootfs = join(work, 'rootfs');
    await mkdir(rootfs);
    await expect(materializeEntries(rootfs, layer.entries!)).rejects.toBeInstanceOf(NotMaterializableError);
  });

  it('refuses entries it cannot replay (a whiteout)', async () => {
    const rootfs = await tmp.make('mat-wh');
    await expect(materializeEntries(rootfs, [{ name: '.wh.x', type: 'whiteout', mode: 0, uid: 0, gid: 0, mtime: 0 }])).rejects.toThrow(/whiteout/);
  });
});
