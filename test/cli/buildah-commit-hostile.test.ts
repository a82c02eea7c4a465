/**
 * The hostile base image for `buildah commit`, which folds layers from their tar headers and reads
 * file contents from the container's filesystem: a layer whose symlink `d -> /` is followed by a
 * file named through it (`d/<a host path>`). The unpacker puts that file inside the rootfs; the
 * commit must read it there too, never the host's file of the same path.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupCli, cliTempDir, stevedore } from './stevedore.js';

afterAll(() => cleanupCli());

describe('buildah commit of a hostile base', () => {
  it('reads a file named through a symlink to / inside the container, not on the host', async () => {
    const work = await cliTempDir('buildah-hostile');
    const root = join(work, 'store');
    const hostDir = join(work, 'host');
    await mkdir(hostDir);
    await writeFile(join(hostDir, 'secret.txt'), 'HOST-ONLY-CONTENT\n');
    // The layer: parents of the host path as directories, `d -> /`, then `d/<host path>/secret.txt`.
    const tree = join(work, 'layer');
    await mkdir(join(tree, hostDir.slice(1)), { recursive: true });
    await writeFile(join(tree, 'inner.txt'), 'image-content\n');
    const py = [
      'import sys, tarfile',
      'tree, host, out = sys.argv[1:]',
      "with tarfile.open(out, 'w', format=tarfile.PAX_FORMAT) as t:",
      "    t.add(tree + '/' + host.split('/')[1], arcname=host.split('/')[1])",
      "    s = tarfile.TarInfo('d'); s.type = tarfile.SYMTYPE; s.linkname = '/'; t.addfile(s)",
      "    data = open(tree + '/inner.txt', 'rb').read()",
      "    f = tarfile.TarInfo('d' + host + '/secret.txt'); f.size = len(data); f.mode = 0o644",
      '    import io; t.addfile(f, io.BytesIO(data))',
    ].join('\n');
    const tarball = join(work, 'hostile.tar');
    execFileSync('python3', ['-c', py, tree, hostDir, tarball]);
    const layout = join(work, 'hostile-layout');
    const imported = await stevedore(['import', tarball, `oci:${layout}:1`]);
    expect(imported.code, imported.stderr).toBe(0);

    const from = await stevedore(['buildah', 'from', '--root', root, `oci:${layout}:1`], { timeoutMs: 120_000 });
    expect(from.code, from.stderr).toBe(0);
    const c = from.stdout.trim();
    const out = join(work, 'out');
    const commit = await stevedore(['buildah', 'commit', '--root', root, '--squash', c, `oci:${out}:1`], { timeoutMs: 120_000 });
    expect(commit.code, commit.stderr).toBe(0);

    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const blob = (d: string) => join(out, 'blobs', 'sha256', d.slice('sha256:'.length));
    const manifest = JSON.parse(await readFile(blob(index.manifests[0]!.digest), 'utf8')) as { layers: { digest: string }[] };
    expect(manifest.layers).toHaveLength(1);
    const layer = execFileSync('tar', ['-xOf', blob(manifest.layers[0]!.digest), `d${hostDir}/secret.txt`], { encoding: 'utf8' });
    expect(layer).toBe('image-content\n');
  }, 180_000);
});
