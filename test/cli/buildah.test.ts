/**
 * `stevedore buildah` verbs as a script uses them: names printed by `from`, the `containers`
 * table, a failing `run` (its exit code, and no change kept), `--squash`, `rm`, bad input.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBusyboxImage } from '../../hack/lib/harness/images.js';
import { startRegistry } from '../../hack/lib/harness/registry.js';
import { cleanupCli, cliTempDir, stevedore } from './stevedore.js';

let root: string;
let base: string;
const bh = async (...args: string[]) => stevedore(['buildah', args[0]!, '--root', root, ...args.slice(1)], { timeoutMs: 120_000 });

async function imageConfig(name: string): Promise<{ history: { created_by: string; empty_layer?: boolean }[]; rootfs: { diff_ids: string[] } }> {
  const layout = join(root, 'images');
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
  const desc = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === name)!;
  const blob = async (d: string) => JSON.parse(await readFile(join(layout, 'blobs', 'sha256', d.slice(7)), 'utf8'));
  return blob((await blob(desc.digest)).config.digest);
}

beforeAll(async () => {
  const work = await cliTempDir('buildah-cli');
  root = join(work, 'store');
  base = (await makeBusyboxImage(join(work, 'busybox'), 'bb')).ociRef;
}, 60_000);
afterAll(() => cleanupCli());

describe('stevedore buildah', () => {
  it('names containers as buildah does, lists them, and removes them', async () => {
    const a = await bh('from', base);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toBe('busybox-working-container\n');
    expect((await bh('from', base)).stdout).toBe('busybox-working-container-1\n');
    expect((await bh('from', '--name', 'mine', base)).stdout).toBe('mine\n');
    const taken = await bh('from', '--name', 'mine', base);
    expect(taken.code).not.toBe(0);
    expect(taken.stderr).toMatch(/"mine" already exists/);
    const bad = await bh('from', '--name', '../escape', base);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/container name/);
    const list = await bh('containers');
    const lines = list.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('CONTAINER ID  BUILDER  IMAGE ID     IMAGE NAME                       CONTAINER NAME');
    expect(lines).toHaveLength(4);
    expect(lines[1]).toMatch(/^[0-9a-f]{12}     \*     [0-9a-f]{12} localhost\/busybox:bb\s+busybox-working-container$/);
    const rm = await bh('rm', 'busybox-working-container-1');
    expect(rm.stdout).toMatch(/^[0-9a-f]{64}\n$/);
    const all = await bh('rm', '--all');
    expect(all.stdout.trim().split('\n')).toHaveLength(2);
    expect((await bh('containers', '--noheading')).stdout).toBe('');
    const missing = await bh('run', 'busybox-working-container', '--', 'true');
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/no working container named "busybox-working-container"/);
  }, 120_000);

  it("passes a failing command's exit code on and keeps none of its changes", async () => {
    const c = (await bh('from', base)).stdout.trim();
    const fail = await bh('run', c, '--', 'sh', '-c', 'echo partial > /kept; exit 7');
    expect(fail.code).toBe(7);
    const ok = await bh('run', c, '--', 'sh', '-c', 'test ! -e /kept && echo clean');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toBe('clean\n');
    await bh('rm', c);
  }, 120_000);

  it('commits one layer per commit, or everything as one with --squash', async () => {
    const c = (await bh('from', base)).stdout.trim();
    expect((await bh('run', c, '--', 'sh', '-c', 'echo 1 > /one')).code).toBe(0);
    expect((await bh('run', c, '--', 'sh', '-c', 'echo 2 > /two')).code).toBe(0);
    const commit = await bh('commit', c, 'layers:1');
    expect(commit.code, commit.stderr).toBe(0);
    expect(commit.stdout).toMatch(/^[0-9a-f]{64}\n$/);
    const plain = await imageConfig('localhost/layers:1');
    expect(plain.rootfs.diff_ids).toHaveLength(2);
    expect(plain.history.map((h) => h.created_by)).toEqual(['busybox-static from Debian', '/bin/sh']);
    const squashed = await bh('commit', '--squash', c, 'layers:squashed');
    expect(squashed.code, squashed.stderr).toBe(0);
    const sq = await imageConfig('localhost/layers:squashed');
    expect(sq.rootfs.diff_ids).toHaveLength(1);
    expect(sq.history).toHaveLength(1);
    // The container stays after a commit, as buildah's; --rm removes it.
    const again = await bh('commit', '--rm', c, 'layers:2');
    expect(again.code, again.stderr).toBe(0);
    expect((await bh('containers', '-q')).stdout).toBe('');
    await bh('rm', '--all');
  }, 180_000);

  it('commits straight to a registry, with compressed layers', async () => {
    const reg = await startRegistry({ name: 'buildah-commit' });
    try {
      const c = (await bh('from', base)).stdout.trim();
      expect((await bh('run', c, '--', 'sh', '-c', 'echo pushed > /pushed')).code).toBe(0);
      const commit = await bh('commit', c, `docker://${reg.host}/scripted/app:1`);
      expect(commit.code, commit.stderr).toBe(0);
      const id = commit.stdout.trim();
      const raw = await stevedore(['inspect', '--raw', `docker://${reg.host}/scripted/app:1`]);
      expect(raw.code, raw.stderr).toBe(0);
      const manifest = JSON.parse(raw.stdout) as { config: { digest: string }; layers: { mediaType: string }[] };
      expect(manifest.config.digest).toBe(`sha256:${id}`);
      expect(manifest.layers.map((l) => l.mediaType)).toEqual(['application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar+gzip']);
      // Also kept in the local store under the registry name, as `build -t` does.
      expect((await imageConfig(`${reg.host}/scripted/app:1`)).rootfs.diff_ids).toHaveLength(2);
      await bh('rm', c);
    } finally {
      await reg.stop();
    }
  }, 180_000);

  it("keeps a working container's layers through prune", async () => {
    const c = (await bh('from', base)).stdout.trim();
    expect((await bh('run', c, '--', 'sh', '-c', 'echo kept > /kept')).code).toBe(0);
    const prune = await stevedore(['prune', '--grace', '0', '--root', root]);
    expect(prune.code, prune.stderr).toBe(0);
    // The snapshot is gone with the prune: the next run unpacks the layer from its blob again.
    const after = await bh('run', c, '--', 'cat', '/kept');
    expect(after.code, after.stderr).toBe(0);
    expect(after.stdout).toBe('kept\n');
    await bh('rm', c);
  }, 120_000);

  it('unshare runs a command and passes its exit code on', async () => {
    const r = await stevedore(['buildah', 'unshare', '--', 'sh', '-c', 'echo "uid=$(id -u) nested=$_STEVEDORE_USERNS"; exit 5']);
    expect(r.code).toBe(5);
    expect(r.stdout).toBe('uid=0 nested=1\n');
    const missing = await stevedore(['buildah', 'unshare', '--', '/no/such/program']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('/no/such/program');
  });
});
