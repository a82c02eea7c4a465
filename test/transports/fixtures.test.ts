import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { afterAll, describe, expect, it } from 'vitest';
import { OciLayout } from '../../src/oci/layout.js';
import { MediaType } from '../../src/oci/mediatype.js';
import { makeBusyboxImage, makeIndex, makeRandomImage } from '../../hack/lib/harness/images.js';
import { ociSchemaErrors } from '../../hack/lib/harness/schema.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';

const tmp = new TempDirs();
afterAll(() => tmp.cleanup());

async function layoutDocsValid(dir: string): Promise<void> {
  expect(ociSchemaErrors('layout', await readFile(join(dir, 'oci-layout')))).toEqual([]);
  expect(ociSchemaErrors('index', await readFile(join(dir, 'index.json')))).toEqual([]);
}

describe('test fixtures', () => {
  it('makeRandomImage writes schema-valid OCI content and is reproducible with a seed', async () => {
    const a = await makeRandomImage({ layers: 2, layerSize: 100_000, seed: 7, layoutDir: await tmp.make('fx-a'), ref: 'x' });
    const b = await makeRandomImage({ layers: 2, layerSize: 100_000, seed: 7, layoutDir: await tmp.make('fx-b'), ref: 'x' });
    const c = await makeRandomImage({ layers: 2, layerSize: 100_000, layoutDir: await tmp.make('fx-c') });
    expect(a.manifest.digest).toBe(b.manifest.digest);
    expect(c.manifest.digest).not.toBe(a.manifest.digest);
    expect(a.layers).toHaveLength(2);
    expect(a.layers[0]!.mediaType).toBe(MediaType.OciLayerGzip);
    expect(a.config.rootfs.diff_ids).toEqual(a.diffIds);
    expect(ociSchemaErrors('manifest', a.manifest.bytes)).toEqual([]);
    expect(ociSchemaErrors('config', a.config)).toEqual([]);
    await layoutDocsValid(a.layoutDir);
    const layout = await OciLayout.open(a.layoutDir);
    expect((await layout.resolve('x')).digest).toBe(a.manifest.digest);
  });

  it('makeRandomImage with format docker uses Docker schema 2 media types', async () => {
    const img = await makeRandomImage({ layers: 1, layerSize: 1000, format: 'docker', layoutDir: await tmp.make('fx-d') });
    expect(img.manifest.mediaType).toBe(MediaType.DockerManifest);
    expect(img.configDescriptor.mediaType).toBe(MediaType.DockerConfig);
    expect(img.layers[0]!.mediaType).toBe(MediaType.DockerLayerGzip);
  });

  it('makeBusyboxImage layers /bin/busybox, its applet links and passwd/group', async () => {
    const dir = await tmp.make('fx-bb');
    const img = await makeBusyboxImage(dir, 'busybox');
    await layoutDocsValid(dir);
    const layout = await OciLayout.open(dir);
    const entries = new Map<string, tar.Header>();
    const extract = tar.extract();
    const feeding = pipeline(await layout.openBlob(img.layers[0]!), createGunzip(), extract as unknown as NodeJS.WritableStream);
    for await (const e of extract) {
      entries.set(e.header.name, e.header);
      e.resume();
    }
    await feeding;
    expect(entries.get('bin/busybox')?.mode).toBe(0o755);
    for (const applet of ['sh', 'ls', 'echo', 'cat', 'true', 'false']) {
      expect(entries.get(`bin/${applet}`)).toMatchObject({ type: 'symlink', linkname: 'busybox' });
    }
    expect(entries.has('etc/passwd') && entries.has('etc/group')).toBe(true);
    expect(img.config.config?.Cmd).toEqual(['/bin/sh']);
  });

  it('makeIndex writes a multi-platform index with one image per platform', async () => {
    const dir = await tmp.make('fx-idx');
    const idx = await makeIndex(dir, 'multi', ['linux/amd64', 'linux/arm64/v8', 'linux/arm/v7']);
    await layoutDocsValid(dir);
    expect(ociSchemaErrors('index', idx.index.bytes)).toEqual([]);
    const doc = JSON.parse(idx.index.bytes.toString()) as { manifests: { platform: unknown }[] };
    expect(doc.manifests.map((m) => m.platform)).toEqual([
      { architecture: 'amd64', os: 'linux' },
      { architecture: 'arm64', os: 'linux', variant: 'v8' },
      { architecture: 'arm', os: 'linux', variant: 'v7' },
    ]);
    expect(idx.images.map((i) => i.config.architecture)).toEqual(['amd64', 'arm64', 'arm']);
    // Only the index is tagged; children are stored by digest.
    expect(await (await OciLayout.open(dir)).refNames()).toEqual(['multi']);
  });
});
