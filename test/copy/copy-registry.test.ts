import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { parseManifest } from '../../src/oci/manifest.js';
import { parsePlatform, hostPlatform, formatPlatform } from '../../src/oci/platform.js';
import { parseImageName } from '../../src/transports/index.js';
import { OciLayout } from '../../src/oci/layout.js';
import { makeIndex, makeRandomImage, type FixtureImage, type FixtureIndex } from '../../hack/lib/harness/images.js';
import { validateOci } from '../../hack/lib/harness/schema.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { skopeo } from '../harness/skopeo.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';

const temps = new TempDirs();
let reg: TestRegistry;
let reg2: TestRegistry;
let image: FixtureImage;
let index: FixtureIndex;

beforeAll(async () => {
  [reg, reg2] = await Promise.all([startRegistry({ name: 'copy-a' }), startRegistry({ name: 'copy-b' })]);
  image = await makeRandomImage({ layers: 3, layerSize: 512 * 1024, layoutDir: await temps.make('img') });
  index = await makeIndex(await temps.make('idx'), 'multi', ['linux/amd64', 'linux/arm64/v8', 'linux/arm/v7'], { layers: 2, layerSize: 64 * 1024 });
});

afterAll(async () => {
  await Promise.all([reg?.stop(), reg2?.stop()]);
  await temps.cleanup();
});

async function copy(src: string, dest: string, opts: Parameters<typeof copyReference>[2] = {}) {
  return copyReference(parseImageName(src), parseImageName(dest), opts);
}

describe('copy between an OCI layout and a real registry', () => {
  it('pushes an image to a registry with its digest unchanged, and skopeo reads it back', async () => {
    const result = await copy(image.ociRef, `docker://${reg.host}/app:1.0`);
    expect(result.digest).toBe(image.manifest.digest);
    expect(result.blobsCopied).toBe(4);
    const inspected = await skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/app:1.0`]);
    expect(inspected.code, inspected.stderr).toBe(0);
    const doc = JSON.parse(inspected.stdout) as { Digest: string; Layers: string[] };
    expect(doc.Digest).toBe(image.manifest.digest);
    expect(doc.Layers).toEqual(image.layers.map((l) => l.digest));
  });

  it('a second copy of the same image reuses every blob and uploads nothing', async () => {
    const result = await copy(image.ociRef, `docker://${reg.host}/app:1.0`);
    expect(result.blobsCopied).toBe(0);
    expect(result.blobsReused).toBe(4);
  });

  it('copies within one registry by cross-repository mount, not upload', async () => {
    const result = await copy(`docker://${reg.host}/app:1.0`, `docker://${reg.host}/other/app:copy`);
    expect(result.blobsCopied).toBe(0);
    expect(result.blobsReused).toBe(4);
    const inspected = await skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/other/app:copy`]);
    expect(JSON.parse(inspected.stdout).Digest).toBe(image.manifest.digest);
  });

  it('copies registry to registry and back into a layout with the same digest, and the layout passes the schema', async () => {
    await copy(`docker://${reg.host}/app:1.0`, `docker://${reg2.host}/mirror/app:1.0`);
    const dir = await temps.make('back');
    const result = await copy(`docker://${reg2.host}/mirror/app:1.0`, `oci:${dir}:back`);
    expect(result.digest).toBe(image.manifest.digest);
    const layout = await OciLayout.open(dir);
    validateOci('index', await layout.readIndex());
    const desc = await layout.resolve('back');
    const parsed = parseManifest(await layout.readBlob(desc.digest));
    expect(parsed.kind).toBe('image');
    validateOci('manifest', JSON.parse((await layout.readBlob(desc.digest)).toString()));
  });

  it('copies an image that skopeo pushed', async () => {
    const pushed = await skopeo(['copy', '--dest-tls-verify=false', image.ociRef, `docker://${reg.host}/by-skopeo:v1`]);
    expect(pushed.code, pushed.stderr).toBe(0);
    const dir = await temps.make('from-skopeo');
    const result = await copy(`docker://${reg.host}/by-skopeo:v1`, `oci:${dir}:v1`);
    const head = await skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/by-skopeo:v1`]);
    const { createHash } = await import('node:crypto');
    expect(result.digest).toBe(`sha256:${createHash('sha256').update(head.stdout).digest('hex')}`);
  });

  it('converts to Docker schema 2 on request, changing only the manifest', async () => {
    const result = await copy(image.ociRef, `docker://${reg.host}/app:docker`, { format: 'v2s2' });
    expect(result.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(result.digest).not.toBe(image.manifest.digest);
    const raw = await skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/app:docker`]);
    const doc = JSON.parse(raw.stdout);
    expect(doc.config.mediaType).toBe('application/vnd.docker.container.image.v1+json');
    expect(doc.layers.map((l: { digest: string }) => l.digest)).toEqual(image.layers.map((l) => l.digest));
  });

  it('refuses a format change under --preserve-digests', async () => {
    await expect(copy(image.ociRef, `docker://${reg.host}/app:nope`, { format: 'v2s2', preserveDigests: true })).rejects.toThrow(/preserve-digests/);
  });
});

describe('copy of a multi-platform index', () => {
  it('--all keeps the index digest and every platform, and skopeo sees the same index', async () => {
    const result = await copy(index.ociRef, `docker://${reg.host}/multi:all`, { all: true, preserveDigests: true });
    expect(result.digest).toBe(index.index.digest);
    expect(result.platforms.sort()).toEqual(['linux/amd64', 'linux/arm/v7', 'linux/arm64/v8']);
    const raw = await skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/multi:all`]);
    expect(JSON.parse(raw.stdout).manifests).toHaveLength(3);
    const all = await skopeo(['copy', '--all', '--src-tls-verify=false', `docker://${reg.host}/multi:all`, `oci:${await temps.make('sk')}:x`]);
    expect(all.code, all.stderr).toBe(0);
  });

  it('without --all copies only the host platform image, as skopeo does', async () => {
    const result = await copy(index.ociRef, `docker://${reg.host}/multi:host`);
    const want = index.images.find((i) => formatPlatform(i.platform) === formatPlatform(hostPlatform()))!;
    expect(result.digest).toBe(want.manifest.digest);
  });

  it('--platform picks one image, and two platforms make a new index of just those', async () => {
    const one = await copy(index.ociRef, `docker://${reg.host}/multi:arm64`, { platforms: [parsePlatform('linux/arm64')] });
    expect(one.digest).toBe(index.images.find((i) => i.platform.architecture === 'arm64')!.manifest.digest);
    const two = await copy(index.ociRef, `docker://${reg.host}/multi:two`, { platforms: [parsePlatform('linux/arm64'), parsePlatform('linux/arm/v7')] });
    const raw = await skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/multi:two`]);
    const doc = JSON.parse(raw.stdout);
    expect(doc.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture).sort()).toEqual(['arm', 'arm64']);
    expect(two.digest).not.toBe(index.index.digest);
    validateOci('index', doc);
  });

  it('fails clearly for a platform the index lacks, and for a subset under --preserve-digests', async () => {
    await expect(copy(index.ociRef, `docker://${reg.host}/multi:x`, { platforms: [parsePlatform('linux/s390x')] })).rejects.toThrow(
      /no image for platform linux\/s390x/,
    );
    await expect(
      copy(index.ociRef, `docker://${reg.host}/multi:y`, { platforms: [parsePlatform('linux/arm64'), parsePlatform('linux/amd64')], preserveDigests: true }),
    ).rejects.toThrow(/preserve-digests/);
  });
});

describe('copy: uncompressed layers into a registry', () => {
  it('a push from a docker archive gzips its plain layers (as skopeo does), keeping the diffIDs; --preserve-digests refuses', async () => {
    const { makeBusyboxImage } = await import('../../hack/lib/harness/images.js');
    const bb = await makeBusyboxImage(await temps.make('bb'), 'bb');
    const archive = `${await temps.make('bb-archive')}/bb.tar`;
    await copyReference(parseImageName(bb.ociRef), parseImageName(`docker-archive:${archive}:busybox:1`));
    const result = await copyReference(parseImageName(`docker-archive:${archive}`), parseImageName(`docker://${reg.host}/fromarchive/bb:1`));
    const inspected = await skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/fromarchive/bb:1`]);
    expect(inspected.code, inspected.stderr).toBe(0);
    const m = JSON.parse(inspected.stdout) as { layers: { mediaType: string; size: number; digest: string }[] };
    expect(m.layers.map((l) => l.mediaType)).toEqual([bb.layers[0]!.mediaType]);
    expect(m.layers[0]!.mediaType).toMatch(/gzip$/);
    // Fewer bytes than the plain tar (was: the whole tar sent as it is).
    const plainSize = (await import('node:fs')).statSync(archive).size;
    expect(result.bytesCopied).toBeLessThan(plainSize * 0.7);
    const config = JSON.parse((await skopeo(['inspect', '--tls-verify=false', '--config', `docker://${reg.host}/fromarchive/bb:1`])).stdout) as {
      rootfs: { diff_ids: string[] };
    };
    expect(config.rootfs.diff_ids).toEqual(bb.diffIds);
    const refused = await copyReference(parseImageName(`docker-archive:${archive}`), parseImageName(`docker://${reg.host}/fromarchive/bb:2`), {
      preserveDigests: true,
    }).catch((e: Error) => e);
    expect((refused as Error).message).toMatch(/--preserve-digests: .* gzip-compressed \(they are uncompressed\)/);
  });
});
