/**
 * COPY/ADD layers compared with buildah's: the same instructions on FROM scratch, built by
 * `buildah bud` and by writeCopyLayer (each layer applied with GNU tar before the next is planned
 * against it), must give the same tree: types, modes, owners, contents, link targets.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ignoreFromLines } from '../../src/build/context/ignore.js';
import { writeCopyLayer, type CopySpec } from '../../src/build/layers/copy.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { snapshot } from './fixtures-layers/oci-apply.js';

const tmp = new TempDirs();
const tag = `localhost/stevedore-layers-test:${randomBytes(4).toString('hex')}`;
let ctx: string;
let buildahTree: string[];

/** Each instruction as a Containerfile line and as the spec the executor would hand over. */
const steps: { line: string; spec: CopySpec; add?: boolean }[] = [
  { line: 'COPY a.txt /file-renamed', spec: { sources: ['a.txt'], dest: '/file-renamed', workdir: '/' } },
  { line: 'COPY a.txt b.txt /multi', spec: { sources: ['a.txt', 'b.txt'], dest: '/multi', workdir: '/' } },
  { line: 'COPY dir /dst', spec: { sources: ['dir'], dest: '/dst', workdir: '/' } },
  { line: 'COPY *.txt /glob/', spec: { sources: ['*.txt'], dest: '/glob/', workdir: '/' } },
  { line: 'COPY --chown=1000:1001 dir /owned/deep/', spec: { sources: ['dir'], dest: '/owned/deep/', workdir: '/', chown: { uid: 1000, gid: 1001 } } },
  { line: 'COPY --chmod=640 a.txt /modes/', spec: { sources: ['a.txt'], dest: '/modes/', workdir: '/', chmod: 0o640 } },
  { line: 'COPY link-to-a /links/', spec: { sources: ['link-to-a'], dest: '/links/', workdir: '/' } },
  { line: 'COPY a.txt /dst', spec: { sources: ['a.txt'], dest: '/dst', workdir: '/' } },
  { line: 'ADD payload.tar.gz /unpacked', spec: { sources: ['payload.tar.gz'], dest: '/unpacked', workdir: '/', add: true } },
  { line: 'COPY payload.tar.gz /packed/', spec: { sources: ['payload.tar.gz'], dest: '/packed/', workdir: '/' } },
  { line: 'COPY . /all/', spec: { sources: ['.'], dest: '/all/', workdir: '/' } },
];

beforeAll(async () => {
  ctx = await tmp.make('bh-ctx');
  await writeFile(join(ctx, 'a.txt'), 'A\n');
  await writeFile(join(ctx, 'b.txt'), 'B\n');
  await chmod(join(ctx, 'b.txt'), 0o755);
  await mkdir(join(ctx, 'dir/sub'), { recursive: true });
  await chmod(join(ctx, 'dir/sub'), 0o700);
  await writeFile(join(ctx, 'dir/x'), 'X\n');
  await writeFile(join(ctx, 'dir/sub/y'), 'Y\n');
  await link(join(ctx, 'dir/x'), join(ctx, 'dir/x-hard'));
  await symlink('../x', join(ctx, 'dir/sub/rel'));
  await symlink('a.txt', join(ctx, 'link-to-a'));
  await writeFile(join(ctx, 'secret.key'), 'k');
  await writeFile(join(ctx, '.dockerignore'), '*.key\nContainerfile\n');
  const payload = await tmp.make('bh-payload');
  await mkdir(join(payload, 'etc'));
  await writeFile(join(payload, 'etc/conf'), 'conf\n');
  await symlink('conf', join(payload, 'etc/conf-link'));
  execFileSync('tar', ['-C', payload, '--owner=1234', '--group=5678', '-czf', join(ctx, 'payload.tar.gz'), '.']);
  await writeFile(join(ctx, 'Containerfile'), ['FROM scratch', ...steps.map((s) => s.line)].join('\n') + '\n');

  execFileSync('buildah', ['bud', '--layers', '--format', 'docker', '-q', '-t', tag, ctx], { stdio: ['ignore', 'ignore', 'pipe'] });
  const ctr = execFileSync('buildah', ['from', tag], { encoding: 'utf8' }).trim();
  try {
    const mnt = execFileSync('buildah', ['mount', ctr], { encoding: 'utf8' }).trim();
    buildahTree = snapshot(mnt);
  } finally {
    execFileSync('buildah', ['rm', ctr], { stdio: 'ignore' });
    execFileSync('buildah', ['rmi', tag], { stdio: 'ignore' });
  }
}, 180_000);
afterAll(() => tmp.cleanup());

describe('COPY/ADD layers match buildah bud', () => {
  it('gives the same flattened tree as buildah for the same instructions', async () => {
    const rootfs = await tmp.make('bh-rootfs');
    const work = await tmp.make('bh-work');
    const root = { dir: ctx, ignore: ignoreFromLines(['*.key', 'Containerfile'], '.dockerignore') };
    for (const s of steps) {
      const layer = await writeCopyLayer(root, s.spec, { workDir: work, targetRootfs: rootfs });
      execFileSync('tar', ['--numeric-owner', '--same-owner', '-p', '-C', rootfs, '-xzf', layer.path]);
    }
    // The comparison means something only if buildah's tree holds what the steps made.
    expect(buildahTree.length).toBeGreaterThan(30);
    expect(buildahTree).toContain('l 777 0:0 4 all/dir/sub/rel -> ../x');
    expect(buildahTree.some((l) => l.startsWith('f 644 1234:5678 5 unpacked/etc/conf '))).toBe(true);
    expect(buildahTree.some((l) => l.startsWith('d 700 1000:1001 - owned/deep/sub'))).toBe(true);
    expect(buildahTree.some((l) => l.includes('secret.key'))).toBe(false);
    expect(snapshot(rootfs)).toEqual(buildahTree);
  });
});
