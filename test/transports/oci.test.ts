import { appendFile, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { OciLayout } from '../../src/oci/layout.js';
import { MediaType } from '../../src/oci/mediatype.js';
import { OciLayoutDestination, OciLayoutSource, parseOciReference } from '../../src/transports/oci.js';
import { DigestMismatchError } from '../../src/util/errors.js';
import { makeBusyboxImage, makeIndex, makeRandomImage } from '../../hack/lib/harness/images.js';
import { ociSchemaErrors } from '../../hack/lib/harness/schema.js';
import { writeTestImageLayout } from '../harness/fixtures.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { copyImage, drain, readWholeImage, skopeoOk, umociOk } from './helpers.js';

const tmp = new TempDirs();
afterAll(() => tmp.cleanup());

describe('oci: reference parsing', () => {
  it('splits PATH[:REF] on the last colon unless a slash follows it', () => {
    expect(parseOciReference('/tmp/a:v1')).toMatchObject({ path: '/tmp/a', refName: 'v1' });
    expect(parseOciReference('/tmp/a')).toMatchObject({ path: '/tmp/a', refName: undefined });
    expect(parseOciReference('/tmp/a:b/c')).toMatchObject({ path: '/tmp/a:b/c', refName: undefined });
    expect(parseOciReference('rel:dir:tag')).toMatchObject({ path: 'rel:dir', refName: 'tag' });
    expect(parseOciReference('/tmp/a:v1').toString()).toBe('oci:/tmp/a:v1');
    expect(() => parseOciReference(':x')).toThrow(/empty path/);
    expect(() => parseOciReference('/tmp/a:bad ref')).toThrow(/malformed image name/);
  });
});

describe('oci: transport', () => {
  it('round-trips an image between layouts with identical digests and a valid layout', async () => {
    const img = await makeRandomImage({ layers: 3, layerSize: 200_000, layoutDir: await tmp.make('oci-a'), ref: 'v1' });
    const destDir = await tmp.make('oci-b');
    const src = await parseOciReference(`${img.layoutDir}:v1`).newSource();
    const dst = await parseOciReference(`${destDir}:copied`).newDestination();
    expect(await dst.currentDigest?.()).toBeUndefined();
    const top = await copyImage(src, dst);
    await dst.close();
    await src.close();
    expect(top.digest).toBe(img.manifest.digest);

    const back = await parseOciReference(`${destDir}:copied`).newSource();
    const { top: readTop, blobs } = await readWholeImage(back, { keepOpen: true });
    expect(readTop.digest).toBe(img.manifest.digest);
    expect(blobs).toEqual([img.configDescriptor.digest, ...img.layers.map((l) => l.digest)]);
    expect(await back.listTags?.()).toEqual(['copied']);
    await back.close();
    expect(ociSchemaErrors('index', await readFile(join(destDir, 'index.json')))).toEqual([]);
    expect(ociSchemaErrors('layout', await readFile(join(destDir, 'oci-layout')))).toEqual([]);
    const again = await parseOciReference(`${destDir}:copied`).newDestination();
    expect(await again.currentDigest?.()).toBe(img.manifest.digest);
  });

  it('copies a multi-platform index with its child manifests', async () => {
    const idx = await makeIndex(await tmp.make('oci-idx'), 'multi', ['linux/amd64', 'linux/arm64', 'linux/arm/v7']);
    const destDir = await tmp.make('oci-idx-b');
    const src = await parseOciReference(`${idx.layoutDir}:multi`).newSource();
    const dst = await parseOciReference(`${destDir}:multi`).newDestination();
    await copyImage(src, dst);
    const { top, blobs } = await readWholeImage(await parseOciReference(`${destDir}:multi`).newSource());
    expect(top.digest).toBe(idx.index.digest);
    expect(blobs).toHaveLength(6);
  });

  it('reads a layout written by an independent implementation (no ref needed for a single entry)', async () => {
    const dir = await tmp.make('oci-indep');
    const ext = await writeTestImageLayout(dir, { tag: 'ext' });
    const { top } = await readWholeImage(await parseOciReference(dir).newSource());
    expect(top.digest).toBe(ext.manifestDigest);
  });

  it('reports a corrupted blob as a digest mismatch instead of returning wrong bytes', async () => {
    const img = await makeRandomImage({ layers: 1, layerSize: 50_000, layoutDir: await tmp.make('oci-bad') });
    const layout = await OciLayout.open(img.layoutDir);
    const path = layout.blobPath(img.layers[0]!.digest);
    const size = (await stat(path)).size;
    // Same size, different bytes: only the digest check can notice.
    const data = await readFile(path);
    data[size - 10] ^= 0xff;
    await writeFile(path, data);
    const src = await parseOciReference(`${img.layoutDir}:latest`).newSource();
    await expect(drain(await src.getBlob(img.layers[0]!))).rejects.toBeInstanceOf(DigestMismatchError);
    await expect(drain(await src.getBlob(img.layers[0]!))).rejects.toThrow(/digest mismatch: expected sha256:/);
  });

  it('refuses a manifest over 4 MiB', async () => {
    const img = await makeRandomImage({ layers: 1, layerSize: 10, layoutDir: await tmp.make('oci-big') });
    const layout = await OciLayout.open(img.layoutDir);
    await appendFile(layout.blobPath(img.manifest.digest), Buffer.alloc(4 * 1024 * 1024 + 1, 0x20));
    const src = await parseOciReference(`${img.layoutDir}:latest`).newSource();
    await expect(src.getManifest()).rejects.toThrow(/limit/);
  });

  it('an interrupted copy (close without commit) leaves index.json untouched', async () => {
    const img = await makeRandomImage({ layers: 2, layerSize: 10_000, layoutDir: await tmp.make('oci-int') });
    const destDir = await tmp.make('oci-int-b');
    const dst = await parseOciReference(`${destDir}:v1`).newDestination();
    const src = await parseOciReference(`${img.layoutDir}:latest`).newSource();
    const before = await readFile(join(destDir, 'index.json'), 'utf8');
    for (const d of [img.configDescriptor, ...img.layers]) await dst.putBlob(d, await src.getBlob(d));
    await dst.putManifest(img.manifest, { top: true });
    await dst.close();
    expect(await readFile(join(destDir, 'index.json'), 'utf8')).toBe(before);
    // A rerun finds the blobs already there.
    const rerun = await parseOciReference(`${destDir}:v1`).newDestination();
    expect(await rerun.tryReuseBlob(img.layers[0]!)).toBe(true);
  });

  it('refuses a manifest whose blobs were not written first', async () => {
    const img = await makeRandomImage({ layers: 1, layerSize: 1000, layoutDir: await tmp.make('oci-miss') });
    const dst = await parseOciReference(`${await tmp.make('oci-miss-b')}:v1`).newDestination();
    await expect(dst.putManifest(img.manifest, { top: true })).rejects.toThrow(/not written first/);
  });

  it('concurrent writers to one layout with different refs both land', async () => {
    const a = await makeRandomImage({ layers: 1, layerSize: 300_000, layoutDir: await tmp.make('oci-ca') });
    const b = await makeRandomImage({ layers: 2, layerSize: 300_000, layoutDir: await tmp.make('oci-cb') });
    const shared = await tmp.make('oci-shared');
    await Promise.all(
      [a, b].map(async (img, i) => {
        const src = await parseOciReference(`${img.layoutDir}:latest`).newSource();
        const dst = await parseOciReference(`${shared}:ref${i}`).newDestination();
        await copyImage(src, dst);
      }),
    );
    const layout = await OciLayout.open(shared);
    expect((await layout.refNames()).sort()).toEqual(['ref0', 'ref1']);
    expect((await layout.resolve('ref0')).digest).toBe(a.manifest.digest);
    expect((await layout.resolve('ref1')).digest).toBe(b.manifest.digest);
  });

  it('replaces the entry of the same ref instead of adding a second one', async () => {
    const a = await makeRandomImage({ layers: 1, layerSize: 100, layoutDir: await tmp.make('oci-ra') });
    const b = await makeRandomImage({ layers: 1, layerSize: 100, layoutDir: await tmp.make('oci-rb') });
    const shared = await tmp.make('oci-r');
    for (const img of [a, b])
      await copyImage(await parseOciReference(`${img.layoutDir}:latest`).newSource(), await parseOciReference(`${shared}:same`).newDestination());
    const index = await (await OciLayout.open(shared)).readIndex();
    expect(index.manifests.map((m) => m.digest)).toEqual([b.manifest.digest]);
  });

  it("untagged (a manifest list's images): stores an image by digest only, leaves index.json as it was, and says what it wrote", async () => {
    const img = await makeRandomImage({ layers: 2, layerSize: 1000, format: 'docker', layoutDir: await tmp.make('oci-un-a') });
    const destDir = await tmp.make('oci-un-b');
    await expect(OciLayoutDestination.open(destDir, 'v1', 'list', { untagged: true })).rejects.toThrow(/takes no ref name/);
    // As skopeo, an oci: layout takes OCI manifests; the list's destination keeps a Docker image Docker.
    expect((await parseOciReference(destDir).newDestination()).supportedManifestTypes).toEqual([MediaType.OciManifest, MediaType.OciIndex]);
    const dst = await OciLayoutDestination.open(destDir, undefined, 'list', { untagged: true, anyManifestType: true });
    expect(dst.supportedManifestTypes).toBeUndefined();
    const before = await readFile(join(destDir, 'index.json'), 'utf8');
    await copyImage(await parseOciReference(`${img.layoutDir}:latest`).newSource(), dst);
    expect(await readFile(join(destDir, 'index.json'), 'utf8')).toBe(before);
    expect(dst.written).toEqual({ mediaType: MediaType.DockerManifest, digest: img.manifest.digest, size: img.manifest.bytes.length });
    const { top, blobs } = await readWholeImage(OciLayoutSource.at(dst.layout, dst.written!, 'list'));
    expect(top.digest).toBe(img.manifest.digest);
    expect(blobs).toEqual([img.configDescriptor.digest, ...img.layers.map((l) => l.digest)]);
  });
});

describe('oci: interoperability', () => {
  it('skopeo inspects and copies a layout we wrote; we read what skopeo wrote', async () => {
    const img = await makeRandomImage({ layers: 2, layerSize: 100_000, layoutDir: await tmp.make('oci-sk') });
    const ours = await tmp.make('oci-sk-ours');
    await copyImage(await parseOciReference(`${img.layoutDir}:latest`).newSource(), await parseOciReference(`${ours}:mine`).newDestination());
    const inspect = JSON.parse((await skopeoOk(['inspect', '--raw', `oci:${ours}:mine`])).stdout) as { layers: { digest: string }[] };
    expect(inspect.layers.map((l) => l.digest)).toEqual(img.layers.map((l) => l.digest));
    const theirs = await tmp.make('oci-sk-theirs');
    await skopeoOk(['copy', `oci:${ours}:mine`, `oci:${theirs}:back`]);
    const { top } = await readWholeImage(await parseOciReference(`${theirs}:back`).newSource());
    expect(top.digest).toBe(img.manifest.digest);
  });

  it('umoci lists and unpacks a busybox image we wrote', async () => {
    const dir = await tmp.make('oci-umoci');
    const img = await makeBusyboxImage(dir, 'busybox');
    const copy = await tmp.make('oci-umoci-copy');
    await copyImage(await parseOciReference(`${dir}:busybox`).newSource(), await parseOciReference(`${copy}:bb`).newDestination());
    expect((await umociOk(['ls', '--layout', copy])).stdout.trim().split('\n')).toEqual(['bb']);
    const bundle = join(await tmp.make('oci-umoci-bundle'), 'bundle');
    await umociOk(['unpack', '--rootless', '--image', `${copy}:bb`, bundle]);
    expect((await stat(join(bundle, 'rootfs', 'bin', 'busybox'))).size).toBeGreaterThan(100_000);
    expect(img.manifest.digest).toMatch(/^sha256:/);
  });
});
