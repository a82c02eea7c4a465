/**
 * sync with a layer compression (issue 16 "Compression"; ImageMirror spec.compression runs the same
 * engine): every layer is converted, the copy is annotated with its source digest and compression,
 * and a re-run skips unchanged tags from two HEADs and the destination's own manifest, without
 * reading the source manifest or converting anything again.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { CONVERTED_COMPRESSION_ANNOTATION, SUBSET_SOURCE_ANNOTATION } from '../../src/copy/image.js';
import { sync } from '../../src/copy/sync.js';
import { MediaType } from '../../src/oci/mediatype.js';
import { ZSTD_CHUNKED_MANIFEST_POSITION } from '../../src/oci/zstd-chunked-format.js';
import { parseImageName } from '../../src/transports/index.js';
import { makeIndex, makeRandomImage } from '../../hack/lib/harness/images.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { cleanupCli, stevedore } from '../cli/stevedore.js';

const temps = new TempDirs();
let src: TestRegistry;
let dst: TestRegistry;
let srcProxy: FaultProxy;
const savedEnv: Record<string, string | undefined> = {};

beforeAll(async () => {
  const envDir = await temps.make('compression-env');
  await writeFile(join(envDir, 'auth.json'), '{"auths":{}}');
  for (const [k, v] of Object.entries({
    REGISTRY_AUTH_FILE: join(envDir, 'auth.json'),
    XDG_RUNTIME_DIR: envDir,
    XDG_CONFIG_HOME: envDir,
    DOCKER_CONFIG: envDir,
  })) {
    savedEnv[k] = process.env[k];
    process.env[k] = v;
  }
  [src, dst] = await Promise.all([startRegistry({ name: 'compression-src' }), startRegistry({ name: 'compression-dst' })]);
  srcProxy = await startFaultProxy(src.url);
  const img = await makeRandomImage({ layers: 2, layerSize: 50_000, layoutDir: await temps.make('img'), ref: 'x' });
  const idx = await makeIndex(await temps.make('idx'), 'x', ['linux/amd64', 'linux/arm64/v8'], { layers: 1, layerSize: 20_000 });
  for (const tag of ['1', 'latest']) await copyReference(parseImageName(img.ociRef), parseImageName(`docker://${src.host}/team/app:${tag}`));
  await copyReference(parseImageName(idx.ociRef), parseImageName(`docker://${src.host}/team/app:multi`), { all: true });
});

afterAll(async () => {
  await srcProxy?.stop();
  await Promise.all([src?.stop(), dst?.stop()]);
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await temps.cleanup();
  await cleanupCli();
});

type Manifest = {
  mediaType: string;
  annotations?: Record<string, string>;
  layers?: { mediaType: string; annotations?: Record<string, string> }[];
  manifests?: { digest: string }[];
};
const getManifest = async (reg: TestRegistry, repo: string, ref: string): Promise<Manifest> =>
  (await (
    await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, { headers: { accept: `${MediaType.OciManifest}, ${MediaType.OciIndex}` } })
  ).json()) as Manifest;

describe('sync --dest-compress-format zstd:chunked', () => {
  it('converts every layer of images and indexes, and a re-run skips every tag without a source manifest GET', async () => {
    const spec = { registry: srcProxy.host, repository: 'team/app', tags: [] };
    const target = { kind: 'registry' as const, registry: dst.host, prefix: '', repository: 'mirror/app' };
    const first = await sync([spec], target, { compression: 'zstd:chunked' });
    expect(first.failed, JSON.stringify(first.items)).toBe(0);
    expect(first.copied).toBe(3);
    const one = await getManifest(dst, 'mirror/app', '1');
    expect(one.mediaType).toBe(MediaType.OciManifest);
    expect(one.layers!.map((l) => l.mediaType)).toEqual([MediaType.OciLayerZstd, MediaType.OciLayerZstd]);
    for (const l of one.layers!) expect(l.annotations?.[ZSTD_CHUNKED_MANIFEST_POSITION]).toMatch(/^\d+:\d+:\d+:1$/);
    const srcDigest = (await fetch(`${src.url}/v2/team/app/manifests/1`, { method: 'HEAD', headers: { accept: MediaType.OciManifest } })).headers.get(
      'docker-content-digest',
    );
    expect(one.annotations?.[SUBSET_SOURCE_ANNOTATION]).toBe(srcDigest);
    expect(one.annotations?.[CONVERTED_COMPRESSION_ANNOTATION]).toBe('zstd:chunked');
    const multi = await getManifest(dst, 'mirror/app', 'multi');
    expect(multi.manifests).toHaveLength(2);
    expect(multi.annotations?.[CONVERTED_COMPRESSION_ANNOTATION]).toBe('zstd:chunked');
    const child = await getManifest(dst, 'mirror/app', multi.manifests![0]!.digest);
    expect(child.layers![0]!.annotations?.[ZSTD_CHUNKED_MANIFEST_POSITION]).toBeDefined();

    srcProxy.clearHits();
    const again = await sync([spec], target, { compression: 'zstd:chunked' });
    expect(again.skipped).toBe(3);
    expect(again.copied).toBe(0);
    const gets = srcProxy.hits(/\/manifests\//).filter((r) => r.method === 'GET');
    expect(gets).toEqual([]);

    // Another compression is another image: the mirror converts again.
    const gz = await sync([{ ...spec, tags: ['1'] }], target, { compression: 'gzip' });
    expect(gz.copied).toBe(1);
    expect((await getManifest(dst, 'mirror/app', '1')).layers![0]!.mediaType).toBe(MediaType.OciLayerGzip);
  });

  it('the CLI takes --dest-compress-format and refuses it with --preserve-digests', async () => {
    const r = await stevedore(['sync', '--src', 'docker', '--dest', 'docker', '--dest-compress-format', 'zstd', `${src.host}/team/app`, `${dst.host}/cli`]);
    expect(r.code, r.stderr).toBe(0);
    expect((await getManifest(dst, 'cli/app', '1')).layers![0]!.mediaType).toBe(MediaType.OciLayerZstd);
    const again = await stevedore(['sync', '--src', 'docker', '--dest', 'docker', '--dest-compress-format', 'zstd', `${src.host}/team/app`, `${dst.host}/cli`]);
    expect(again.stderr).toMatch(/Sync: 0 copied, 3 unchanged/);
    const refused = await stevedore([
      'sync',
      '--src',
      'docker',
      '--dest',
      'docker',
      '--preserve-digests',
      '--dest-compress-format',
      'zstd',
      `${src.host}/team/app`,
      `${dst.host}/cli`,
    ]);
    expect(refused.code).toBe(125);
    expect(refused.stderr).toContain('--preserve-digests and --dest-compress-format contradict each other');
  });
});
