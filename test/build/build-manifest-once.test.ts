/**
 * `build --manifest LIST` writes each built image's blobs once: the build sends them (layers
 * compressed) straight into the list's layout (BuiltImagesTarget, one of its destinations), and
 * adding them to the list finds them there and writes none again, with no scratch layout between.
 * In process, with the store's writes of streamed blobs (layers and configs) recorded; the CLI
 * side of `--manifest` is test/build/build-manifest.test.ts.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildImage } from '../../src/build/index.js';
import { addBuiltImages, BuiltImagesTarget } from '../../src/manifest/build-list.js';
import { listLocation, readList } from '../../src/manifest/list.js';
import { OciLayout } from '../../src/oci/layout.js';
import { manifestBlobs, parseManifest } from '../../src/oci/manifest.js';
import { MediaType } from '../../src/oci/mediatype.js';
import { ImageStore } from '../../src/runtime/store/index.js';
import { makeIndex } from '../../hack/lib/harness/images.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';

const tmp = new TempDirs();
let work: string;
let base: string;
let ctx: string;

beforeAll(async () => {
  work = await tmp.make('build-manifest-once');
  base = (await makeIndex(join(work, 'base'), 'multi', ['linux/amd64', 'linux/arm64'], { seed: 'manifest-once' })).ociRef;
  ctx = join(work, 'ctx');
  await mkdir(ctx);
  await writeFile(join(ctx, 'hello.txt'), 'hello\n');
  await writeFile(join(ctx, 'Containerfile'), `FROM ${base}\nARG TARGETARCH\nLABEL arch=$TARGETARCH\nCOPY hello.txt /hello.txt\n`);
}, 60_000);
afterEach(() => {
  vi.restoreAllMocks();
});
afterAll(() => tmp.cleanup());

const platforms = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64' },
];

/** Builds into `store` with `--manifest list` as the CLI does; returns the streamed blob writes outside the store's images layout. */
async function buildIntoList(store: ImageStore, format: 'oci' | 'docker') {
  const writes = vi.spyOn(OciLayout.prototype, 'writeBlob');
  writes.mockClear();
  const target = new BuiltImagesTarget(listLocation('app:list', store.root));
  const built = await buildImage({
    store,
    context: ctx,
    platforms,
    format,
    timestamp: 1700000000,
    moreDestinations: [{ kind: 'transport', text: target.location.display, ref: target }],
  });
  const added = await addBuiltImages(target);
  const elsewhere = writes.mock.calls
    .map((call, i) => ({ layout: (writes.mock.contexts[i] as OciLayout).path, digest: call[1]?.digest }))
    .filter((w) => w.layout !== store.imagesDir);
  return { built, added, elsewhere, target };
}

describe('build --manifest', () => {
  it("streams each blob once, into the list's layout, and the list names every platform's image with all its blobs there", async () => {
    const store = await ImageStore.open(join(work, 'store-oci'));
    const { built, added, elsewhere, target } = await buildIntoList(store, 'oci');
    // The build's images as sent, each under its platform, and no others, are in the list.
    expect(added.added.map((a) => `${a.platform} ${a.digest}`).sort()).toEqual(built.platforms.map((p) => `${p.platform} ${p.digest}`).sort());
    expect(added.added.map((a) => a.platform.split('/')[1]).sort()).toEqual(['amd64', 'arm64']);

    // Nothing went anywhere but the list's layout, and no blob twice.
    expect(elsewhere.length).toBeGreaterThan(0);
    expect(new Set(elsewhere.map((w) => w.layout))).toEqual(new Set([target.location.layoutDir]));
    const digests = elsewhere.map((w) => w.digest);
    expect(digests.length).toBe(new Set(digests).size);
    expect((await readdir(join(store.root, 'tmp')).catch(() => [] as string[])).filter((f) => f.startsWith('manifest-'))).toEqual([]);

    // Each image is whole in the list's layout, its layers compressed (as a push sends them).
    const list = await readList(target.location);
    expect(list.index.manifests).toHaveLength(2);
    for (const entry of list.index.manifests) {
      const parsed = parseManifest(await list.layout.readBlob(entry.digest), entry.mediaType);
      if (parsed.kind !== 'image') throw new Error(`${entry.digest} is not an image`);
      for (const blob of manifestBlobs(parsed.manifest)) expect(await list.layout.hasBlob(blob.digest, blob.size)).toBe(true);
      expect(parsed.manifest.layers.map((l) => l.mediaType)).toEqual(parsed.manifest.layers.map(() => MediaType.OciLayerGzip));
    }

    // Built again unchanged: every blob is already in the list's layout, so none is written.
    const again = await buildIntoList(store, 'oci');
    expect(again.elsewhere).toEqual([]);
    expect(again.added.added.map((a) => a.digest).sort()).toEqual(added.added.map((a) => a.digest).sort());
    expect((await readList(target.location)).index.manifests).toHaveLength(2);
  }, 180_000);

  it('a --format docker build is listed as OCI images, as the oci: layout it used to go through made them', async () => {
    const store = await ImageStore.open(join(work, 'store-docker'));
    const { built, target, elsewhere } = await buildIntoList(store, 'docker');
    expect(built.image.mediaType).toBe(MediaType.DockerManifestList);
    const list = await readList(target.location);
    expect(list.index.manifests.map((m) => m.mediaType)).toEqual([MediaType.OciManifest, MediaType.OciManifest]);
    const digests = elsewhere.map((w) => w.digest);
    expect(digests.length).toBe(new Set(digests).size);
  }, 180_000);
});
