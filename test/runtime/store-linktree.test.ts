/**
 * Snapshots start as a hardlinked copy of their parent: the in-process linker (small trees) must
 * give what `cp -al` gives (the path for big trees): new directories with the same owner, mode
 * (setgid and sticky included) and times, every other entry the same inode.
 */
import { execFileSync } from 'node:child_process';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { linkTree } from '../../src/runtime/store/linktree.js';

const isRoot = process.geteuid?.() === 0;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stevedore-linktree-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function describeTree(root: string, rel = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(join(root, rel))).sort()) {
    const r = rel ? `${rel}/${name}` : name;
    const st = await lstat(join(root, r));
    const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : 'file';
    out[r] = `${kind} ${st.mode.toString(8)} ${st.uid}:${st.gid}${st.isDirectory() ? ` ${Math.round(st.mtimeMs)}` : ` ino-shared`}`;
    if (st.isDirectory()) Object.assign(out, await describeTree(root, r));
  }
  return out;
}

async function makeParent(root: string, extraFiles: number): Promise<void> {
  await mkdir(join(root, 'etc', 'sub'), { recursive: true });
  await mkdir(join(root, 'tmp'));
  await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
  await writeFile(join(root, 'etc', 'sub', 'suid'), 'x', { mode: 0o4755 });
  await symlink('../etc/passwd', join(root, 'etc', 'sub', 'link'));
  for (let i = 0; i < extraFiles; i++) await writeFile(join(root, 'etc', `f${i}`), String(i));
  await chmod(join(root, 'tmp'), 0o1777);
  await chmod(join(root, 'etc', 'sub'), 0o2750);
  if (isRoot) await chown(join(root, 'etc', 'sub'), 1234, 5678);
  for (const d of ['etc/sub', 'etc', 'tmp', '']) await utimes(join(root, d), 1_600_000_000.25, 1_600_000_123.5);
}

describe('linkTree', () => {
  for (const [what, extra] of [
    ['a small tree (in-process)', 5],
    ['a big tree (cp -al)', 600],
  ] as const) {
    it(`copies ${what} as cp -al does: new directories with their metadata, shared inodes for the rest`, async () => {
      const parent = join(dir, `parent-${extra}`);
      await mkdir(parent);
      await makeParent(parent, extra);
      const ours = join(dir, `ours-${extra}`);
      const theirs = join(dir, `theirs-${extra}`);
      await linkTree(parent, ours);
      execFileSync('cp', ['-al', '--', parent, theirs]);
      const want = await describeTree(theirs);
      expect(await describeTree(ours)).toEqual(want);
      expect(want['etc/sub']).toMatch(isRoot ? /^dir 42750 1234:5678 / : /^dir 42750 /);
      expect(want.tmp).toMatch(/^dir 41777 /);
      // Same inodes for files and symlinks, new ones for directories.
      for (const rel of ['etc/passwd', 'etc/sub/suid', 'etc/sub/link']) {
        expect((await lstat(join(ours, rel))).ino).toBe((await lstat(join(parent, rel))).ino);
      }
      expect((await lstat(join(ours, 'etc'))).ino).not.toBe((await lstat(join(parent, 'etc'))).ino);
      expect(Math.round((await lstat(ours)).mtimeMs)).toBe(Math.round((await lstat(parent)).mtimeMs));
    });
  }
});
