import { createWriteStream } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { afterAll, describe, expect, it } from 'vitest';
import { MediaType } from '../../src/oci/mediatype.js';
import { parseDockerArchiveReference } from '../../src/transports/docker-archive.js';
import { parseOciArchiveReference } from '../../src/transports/oci-archive.js';
import { parseOciReference } from '../../src/transports/oci.js';
import { UnsupportedError } from '../../src/util/errors.js';
import { makeBusyboxImage, makeIndex, makeRandomImage } from '../../hack/lib/harness/images.js';
import { writeTar as writeRawTar } from '../fuzz/lib/tar-writer.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { copyImage, readWholeImage, skopeoOk } from './helpers.js';

const tmp = new TempDirs();
afterAll(() => tmp.cleanup());

type Header = Partial<tar.Header> & { name: string };

/** Writes a tar from literal entries (for hostile-archive tests). */
async function writeTar(path: string, entries: { header: Header; data?: string }[]): Promise<void> {
  const pack = tar.pack();
  const done = pipeline(pack, createWriteStream(path));
  for (const e of entries) pack.entry(e.header, e.data ?? '');
  pack.finalize();
  await done;
}

const HOSTILE: [string, Header][] = [
  ['parent traversal', { name: '../evil', type: 'file' }],
  ['nested traversal', { name: 'blobs/../../evil', type: 'file' }],
  ['absolute path', { name: '/tmp/evil', type: 'file' }],
  ['symlink', { name: 'blobs', type: 'symlink', linkname: '/etc' }],
  ['hardlink', { name: 'index.json', type: 'link', linkname: 'oci-layout' }],
  ['character device', { name: 'dev', type: 'character-device', devmajor: 1, devminor: 3 }],
  ['fifo', { name: 'pipe', type: 'fifo' }],
];

describe('oci-archive: transport', () => {
  it('round-trips an image through an archive, 64 MiB layer included, streaming', async () => {
    const img = await makeRandomImage({ layers: 2, layerSize: 64 * 1024 * 1024, layoutDir: await tmp.make('oa-src'), ref: 'big' });
    const archive = join(await tmp.make('oa-out'), 'img.tar');
    const dst = await parseOciArchiveReference(`${archive}:big`).newDestination({ tmpDir: await tmp.make('oa-scratch') });
    await copyImage(await parseOciReference(`${img.layoutDir}:big`).newSource(), dst);
    await dst.close();
    const scratch = await tmp.make('oa-scratch2');
    const src = await parseOciArchiveReference(`${archive}:big`).newSource({ tmpDir: scratch });
    const { top, blobs } = await readWholeImage(src, { keepOpen: true });
    expect(top.digest).toBe(img.manifest.digest);
    expect(blobs).toHaveLength(3);
    expect(await src.listTags?.()).toEqual(['big']);
    await src.close();
    expect(await readdir(scratch)).toEqual([]); // extraction removed on close
  });

  it('writes byte-identical archives for identical content', async () => {
    const img = await makeRandomImage({ layers: 1, layerSize: 1000, layoutDir: await tmp.make('oa-det') });
    const out = await tmp.make('oa-det-out');
    for (const name of ['a.tar', 'b.tar']) {
      await copyImage(await parseOciReference(`${img.layoutDir}:latest`).newSource(), await parseOciArchiveReference(`${join(out, name)}:x`).newDestination());
    }
    expect((await readFile(join(out, 'a.tar'))).equals(await readFile(join(out, 'b.tar')))).toBe(true);
  });

  it('an interrupted copy leaves no archive', async () => {
    const img = await makeRandomImage({ layers: 1, layerSize: 1000, layoutDir: await tmp.make('oa-int') });
    const out = await tmp.make('oa-int-out');
    const dst = await parseOciArchiveReference(`${join(out, 'img.tar')}:x`).newDestination();
    const src = await parseOciReference(`${img.layoutDir}:latest`).newSource();
    for (const d of [img.configDescriptor, ...img.layers]) await dst.putBlob(d, await src.getBlob(d));
    await dst.putManifest(img.manifest, { top: true });
    await dst.close();
    expect(await readdir(out)).toEqual([]);
  });

  for (const [what, header] of HOSTILE) {
    it(`refuses an archive with a ${what} entry`, async () => {
      const archive = join(await tmp.make('oa-hostile'), 'evil.tar');
      await writeTar(archive, [{ header: { name: 'oci-layout', type: 'file' }, data: '{"imageLayoutVersion":"1.0.0"}' }, { header }]);
      const scratch = await tmp.make('oa-hostile-scratch');
      await expect(parseOciArchiveReference(archive).newSource({ tmpDir: scratch })).rejects.toThrow(/refusing/);
      expect(await readdir(scratch)).toEqual([]);
    });
  }

  it('refuses a directory entry announcing data (a PAX size record) instead of waiting for data that never ends', async () => {
    const archive = join(await tmp.make('oa-dirdata'), 'evil.tar');
    await writeFile(
      archive,
      writeRawTar([
        { name: 'blobs/', type: '5', pax: { size: '4096' } },
        { name: 'oci-layout', type: '0', content: Buffer.from('{}') },
      ]),
    );
    const scratch = await tmp.make('oa-dirdata-scratch');
    await expect(parseOciArchiveReference(archive).newSource({ tmpDir: scratch })).rejects.toThrow(
      /refusing archive entry "blobs\/": a directory entry announcing 4096 bytes/,
    );
    expect(await readdir(scratch)).toEqual([]);
  }, 10_000);

  it('interoperates with skopeo both ways', async () => {
    const img = await makeRandomImage({ layers: 2, layerSize: 50_000, layoutDir: await tmp.make('oa-sk') });
    const dir = await tmp.make('oa-sk-out');
    await skopeoOk(['copy', `oci:${img.layoutDir}:latest`, `oci-archive:${join(dir, 'theirs.tar')}:t`]);
    const { top } = await readWholeImage(await parseOciArchiveReference(`${join(dir, 'theirs.tar')}:t`).newSource());
    expect(top.digest).toBe(img.manifest.digest);

    await copyImage(
      await parseOciReference(`${img.layoutDir}:latest`).newSource(),
      await parseOciArchiveReference(`${join(dir, 'ours.tar')}:o`).newDestination(),
    );
    const inspect = JSON.parse((await skopeoOk(['inspect', '--raw', `oci-archive:${join(dir, 'ours.tar')}:o`])).stdout) as { layers: unknown[] };
    expect(inspect.layers).toHaveLength(2);
    const back = await tmp.make('oa-sk-back');
    await skopeoOk(['copy', `oci-archive:${join(dir, 'ours.tar')}:o`, `oci:${back}:b`]);
    expect((await readWholeImage(await parseOciReference(`${back}:b`).newSource())).top.digest).toBe(img.manifest.digest);
  });
});

describe('docker-archive: reference parsing', () => {
  it('ends the path at the first colon and defaults the tag to latest', () => {
    expect(parseDockerArchiveReference('/tmp/a.tar:localhost:5000/app:1').toString()).toBe('docker-archive:/tmp/a.tar:localhost:5000/app:1');
    expect(parseDockerArchiveReference('/tmp/a.tar:busybox').toString()).toBe('docker-archive:/tmp/a.tar:busybox:latest');
    expect(parseDockerArchiveReference('/tmp/a.tar:@1').sourceIndex).toBe(1);
    expect(parseDockerArchiveReference('/tmp/a.tar').image).toBeUndefined();
    expect(() => parseDockerArchiveReference(`/tmp/a.tar:app@sha256:${'a'.repeat(64)}`)).toThrow(/not by digest/);
  });
});

describe('docker-archive: transport', () => {
  it("writes layers as plain tars named by their diffIDs, as docker save and skopeo do: the same image digest as skopeo's archive", async () => {
    // OCI media types: skopeo 1.9 reads no Docker manifest from an OCI layout.
    const img = await makeRandomImage({ layers: 2, layerSize: 100_000, layoutDir: await tmp.make('da-src') });
    const archive = join(await tmp.make('da-out'), 'img.tar');
    const dst = await parseDockerArchiveReference(`${archive}:example.com/app:1.0`).newDestination();
    await copyImage(await parseOciReference(`${img.layoutDir}:latest`).newSource(), dst);
    await dst.close();
    // The files: <config hex>.json and <diffID hex>.tar, each layer a plain tar (no gzip magic).
    const work = await tmp.make('da-x');
    execFileSync('tar', ['-xf', archive, '-C', work]);
    const manifest = JSON.parse(await readFile(join(work, 'manifest.json'), 'utf8')) as { Config: string; Layers: string[] }[];
    expect(manifest[0]!.Layers).toEqual(img.diffIds.map((d) => `${d.slice('sha256:'.length)}.tar`));
    expect(manifest[0]!.Config).toBe(`${img.configDescriptor.digest.slice('sha256:'.length)}.json`);
    for (const l of manifest[0]!.Layers) expect([...(await readFile(join(work, l))).subarray(0, 2)]).not.toEqual([0x1f, 0x8b]);
    for (const ref of [`${archive}:example.com/app:1.0`, archive, `${archive}:@0`]) {
      const { top, blobs } = await readWholeImage(await parseDockerArchiveReference(ref).newSource(), { schema: false });
      const m = JSON.parse(top.bytes.toString()) as { layers: { digest: string }[] };
      expect(m.layers.map((l) => l.digest)).toEqual(img.diffIds);
      expect(blobs).toHaveLength(3);
    }
    await expect(parseDockerArchiveReference(`${archive}:other:1`).newSource()).rejects.toThrow(/no image tagged other:1/);
    // skopeo's archive of the same image reads back as the very same image.
    const theirs = join(await tmp.make('da-skopeo'), 'img.tar');
    await skopeoOk(['copy', `oci:${img.layoutDir}:latest`, `docker-archive:${theirs}:example.com/app:1.0`]);
    const inspect = async (a: string) => JSON.parse((await skopeoOk(['inspect', `docker-archive:${a}`])).stdout) as { Digest: string; Layers: string[] };
    const [ours, skopeos] = [await inspect(archive), await inspect(theirs)];
    expect(ours.Layers).toEqual(img.diffIds);
    expect(ours.Digest).toBe(skopeos.Digest);
    const back = await tmp.make('da-back');
    await skopeoOk(['copy', `docker-archive:${archive}`, `oci:${back}:b`]);
    const { top: skTop } = await readWholeImage(await parseOciReference(`${back}:b`).newSource());
    const layers = (JSON.parse(skTop.bytes.toString()) as { layers: { digest: string }[] }).layers.map((l) => l.digest);
    expect(layers).toHaveLength(2);
  });

  it('refuses a multi-platform index with a clear message', async () => {
    const idx = await makeIndex(await tmp.make('da-idx'), 'multi', ['linux/amd64', 'linux/arm64']);
    const dst = await parseDockerArchiveReference(`${join(await tmp.make('da-idx-out'), 'x.tar')}:app:1`).newDestination();
    const src = await parseOciReference(`${idx.layoutDir}:multi`).newSource();
    const err = await copyImage(src, dst).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedError);
    expect((err as Error).message).toMatch(/choose one platform/);
    await dst.close();
  });

  it('an interrupted copy leaves no archive', async () => {
    const img = await makeRandomImage({ layers: 1, layerSize: 1000, layoutDir: await tmp.make('da-int') });
    const out = await tmp.make('da-int-out');
    const dst = await parseDockerArchiveReference(`${join(out, 'img.tar')}:app:1`).newDestination();
    const src = await parseOciReference(`${img.layoutDir}:latest`).newSource();
    for (const d of [img.configDescriptor, ...img.layers]) await dst.putBlob(d, await src.getBlob(d));
    await dst.putManifest(img.manifest, { top: true });
    await dst.close();
    expect(await readdir(out)).toEqual([]);
  });

  it('reads what `skopeo copy oci: docker-archive:` writes (uncompressed layers become an OCI manifest)', async () => {
    const dir = await tmp.make('da-sk');
    const img = await makeBusyboxImage(dir, 'bb');
    const archive = join(await tmp.make('da-sk-out'), 'bb.tar');
    await skopeoOk(['copy', `oci:${dir}:bb`, `docker-archive:${archive}:busybox:test`]);
    const src = await parseDockerArchiveReference(`${archive}:busybox:test`).newSource();
    const { top, blobs } = await readWholeImage(src);
    await src.close();
    const m = JSON.parse(top.bytes.toString()) as { mediaType: string; config: { digest: string }; layers: { mediaType: string; digest: string }[] };
    // skopeo stores layers decompressed: the layer digest is the diffID.
    expect(m.mediaType).toBe(MediaType.OciManifest);
    expect(m.layers.map((l) => l.mediaType)).toEqual([MediaType.OciLayer]);
    expect(m.layers.map((l) => l.digest)).toEqual(img.diffIds);
    expect(m.config.digest).toBe(img.configDescriptor.digest);
    expect(blobs).toHaveLength(2);
    // And an image read from it can be written again as an archive skopeo accepts.
    const again = join(await tmp.make('da-sk-again'), 'again.tar');
    await copyImage(await parseDockerArchiveReference(archive).newSource(), await parseDockerArchiveReference(`${again}:busybox:again`).newDestination());
    await skopeoOk(['inspect', `docker-archive:${again}`]);
    expect((await stat(again)).size).toBeGreaterThan(1_000_000);
  });

  it('follows legacy <id>/layer.tar links inside the archive without creating them (gzip-compressed archive too)', async () => {
    const dir = await tmp.make('da-legacy');
    await makeRandomImage({ layers: 1, layerSize: 1000, layoutDir: dir });
    const plain = join(await tmp.make('da-legacy-out'), 'p.tar');
    await skopeoOk(['copy', `oci:${dir}:latest`, `docker-archive:${plain}:app:1`]);
    // Rewrite manifest.json to name the layer through skopeo's legacy symlink, and gzip the whole archive.
    const work = await tmp.make('da-legacy-x');
    execFileSync('tar', ['-xf', plain, '-C', work]);
    const manifest = JSON.parse(await readFile(join(work, 'manifest.json'), 'utf8')) as { Layers: string[] }[];
    const linkDir = (await readdir(work)).find((n) => /^[0-9a-f]{64}$/.test(n))!;
    manifest[0]!.Layers = [`${linkDir}/layer.tar`];
    await writeFile(join(work, 'manifest.json'), JSON.stringify(manifest));
    const gz = join(await tmp.make('da-legacy-gz'), 'legacy.tar.gz');
    execFileSync('tar', ['-czf', gz, '-C', work, '.']);
    const { top, blobs } = await readWholeImage(await parseDockerArchiveReference(`${gz}:app:1`).newSource());
    expect(blobs).toHaveLength(2);
    expect(top.mediaType).toBe(MediaType.OciManifest);
  });

  it('refuses hostile entries, and links that leave the archive', async () => {
    for (const header of [
      { name: '../evil', type: 'file' },
      { name: 'x/layer.tar', type: 'symlink', linkname: '../../etc/passwd' },
      { name: 'x/layer.tar', type: 'symlink', linkname: '/etc/passwd' },
      { name: 'dev', type: 'block-device', devmajor: 8, devminor: 0 },
    ] as Header[]) {
      const archive = join(await tmp.make('da-hostile'), 'evil.tar');
      await writeTar(archive, [{ header: { name: 'manifest.json', type: 'file' }, data: '[]' }, { header }]);
      await expect(parseDockerArchiveReference(archive).newSource()).rejects.toThrow(/refusing/);
    }
  });
});
