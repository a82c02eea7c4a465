/**
 * `stevedore build --compression-format zstd:chunked` pushed to a real registry: every layer the
 * build made is zstd with the TOC annotations on its descriptor; the TOC read back through them
 * names every file with a digest its frame matches, and the frames together are the layer (the
 * config's diffID); `stevedore run` of the pushed image works; a rebuild from the cache pushed to
 * another repository sends the same blobs under the same annotations (the remembered variant).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { zstdDecompressSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaType } from '../../src/oci/mediatype.js';
import {
  readZstdChunked,
  ZSTD_CHUNKED_MANIFEST_CHECKSUM,
  ZSTD_CHUNKED_MANIFEST_POSITION,
  ZSTD_CHUNKED_TARSPLIT_POSITION,
} from '../../src/oci/zstd-chunked-format.js';
import { ZstdFramesDecompress } from '../../src/oci/zstd-frames.js';
import { makeBusyboxImage } from '../../hack/lib/harness/images.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { cleanupCli, cliTempDir, stevedore } from '../cli/stevedore.js';

type Layer = { mediaType: string; digest: string; size: number; annotations?: Record<string, string> };
type Manifest = { mediaType: string; config: { digest: string }; layers: Layer[] };

let reg: TestRegistry;
let work: string;
let base: string;
let baseLayers: number;
const big = randomBytes(2 * 1024 * 1024 + 321);

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const store = () => join(work, 'store');
const build = (args: string[]) => stevedore(['build', '--root', store(), '--tls-verify=false', '-q', ...args], { timeoutMs: 180_000 });

async function manifestOf(repo: string, tag: string): Promise<Manifest> {
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${tag}`, { headers: { accept: MediaType.OciManifest } });
  expect(res.status).toBe(200);
  return (await res.json()) as Manifest;
}
async function blobOf(repo: string, digest: string): Promise<Buffer> {
  return Buffer.from(await (await fetch(`${reg.url}/v2/${repo}/blobs/${digest}`)).arrayBuffer());
}
async function unzstdFrames(blob: Buffer): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from([blob]), new ZstdFramesDecompress(), async (src: AsyncIterable<Buffer>) => {
    for await (const c of src) out.push(c);
  });
  return Buffer.concat(out);
}

beforeAll(async () => {
  reg = await startRegistry({ name: 'build-zstd-chunked' });
  work = await cliTempDir('build-zstd-chunked');
  const bb = await makeBusyboxImage(join(work, 'busybox'), 'bb');
  base = bb.ociRef;
  baseLayers = bb.diffIds.length;
  const ctx = join(work, 'ctx');
  await mkdir(join(ctx, 'data', 'sub'), { recursive: true });
  await writeFile(join(ctx, 'data', 'a.txt'), 'alpha\n');
  await writeFile(join(ctx, 'data', 'empty'), '');
  await writeFile(join(ctx, 'data', 'sub', 'big.bin'), big);
  await writeFile(join(ctx, 'Containerfile'), `FROM ${base}\nCOPY data /data/\nRUN echo built > /data/run.txt && ln -s a.txt /data/link\n`);
}, 60_000);

afterAll(async () => {
  await reg?.stop();
  await cleanupCli();
});

describe('build --compression-format zstd:chunked', () => {
  it('pushes zstd:chunked layers whose TOC, read through the descriptor annotations, checks file by file; the image runs; a rebuild reuses the variant', async () => {
    const r = await build(['--compression-format', 'zstd:chunked', '--timestamp', '1700000000', '-t', `${reg.host}/app/chunked:1`, join(work, 'ctx')]);
    expect(r.code, r.stderr).toBe(0);
    const manifest = await manifestOf('app/chunked', '1');
    expect(manifest.mediaType).toBe(MediaType.OciManifest);
    const config = JSON.parse((await blobOf('app/chunked', manifest.config.digest)).toString('utf8')) as { rootfs: { diff_ids: string[] } };
    const built = manifest.layers.slice(baseLayers);
    expect(built).toHaveLength(2);
    const seen = new Map<string, string>();
    for (const [i, layer] of built.entries()) {
      expect(layer.mediaType).toBe(MediaType.OciLayerZstd);
      for (const key of [ZSTD_CHUNKED_MANIFEST_CHECKSUM, ZSTD_CHUNKED_MANIFEST_POSITION, ZSTD_CHUNKED_TARSPLIT_POSITION])
        expect(layer.annotations?.[key], key).toBeDefined();
      const blob = await blobOf('app/chunked', layer.digest);
      expect(sha(blob)).toBe(layer.digest);
      // The frames together are the layer's tar.
      expect(sha(await unzstdFrames(blob))).toBe(config.rootfs.diff_ids[baseLayers + i]);
      const { toc } = readZstdChunked(blob, layer.annotations, layer.digest);
      const regs = toc.entries.filter((e) => e.type === 'reg' && (e.size ?? 0) > 0);
      expect(regs.length).toBeGreaterThan(0);
      for (const e of regs) {
        const content = zstdDecompressSync(blob.subarray(e.offset, e.endOffset));
        expect(content.length, e.name).toBe(e.size);
        expect(sha(content), e.name).toBe(e.digest);
        seen.set(e.name.replace(/^\.?\//, ''), e.digest!);
      }
      for (const e of toc.entries) if (e.type === 'symlink') seen.set(e.name.replace(/^\.?\//, ''), `-> ${e.linkName}`);
    }
    expect(seen.get('data/a.txt')).toBe(sha(Buffer.from('alpha\n')));
    expect(seen.get('data/sub/big.bin')).toBe(sha(big));
    expect(seen.get('data/run.txt')).toBe(sha(Buffer.from('built\n')));
    expect(seen.get('data/link')).toBe('-> a.txt');

    // The pushed image runs (runtime/unpack reads every frame).
    const ran = await stevedore(
      [
        'run',
        '--root',
        join(work, 'run-store'),
        '--tls-verify=false',
        '--rm',
        `${reg.host}/app/chunked:1`,
        'sh',
        '-c',
        'cat /data/a.txt /data/run.txt /data/link && sha256sum /data/sub/big.bin',
      ],
      { timeoutMs: 120_000 },
    );
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toBe(`alpha\nbuilt\nalpha\n${sha(big).slice(7)}  /data/sub/big.bin\n`);

    // The variant is remembered with its annotations ...
    const records = (await readdir(join(store(), 'build-cache', 'blob-info'))).filter((n) => n.includes('zstd-chunked'));
    expect(records).toHaveLength(2);
    for (const name of records) {
      const rec = JSON.parse(await readFile(join(store(), 'build-cache', 'blob-info', name), 'utf8')) as {
        digest: string;
        annotations?: Record<string, string>;
      };
      expect(rec.annotations).toEqual(built.find((l) => l.digest === rec.digest)?.annotations);
    }
    // ... so a rebuild from the cache, pushed to a repository that has none of the blobs, names the
    // same blobs with the same annotations and sends bytes that match them.
    const again = await stevedore(
      [
        'build',
        '--root',
        store(),
        '--tls-verify=false',
        '--compression-format',
        'zstd:chunked',
        '--timestamp',
        '1700000000',
        '-t',
        `${reg.host}/other/chunked:2`,
        join(work, 'ctx'),
      ],
      { timeoutMs: 180_000 },
    );
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout + again.stderr).toMatch(/Using cache/);
    const second = await manifestOf('other/chunked', '2');
    expect(second.layers).toEqual(manifest.layers);
    for (const layer of second.layers.slice(baseLayers)) expect(sha(await blobOf('other/chunked', layer.digest))).toBe(layer.digest);
  });

  it('a hostile blob-info record (annotations that are not strings) is no record: the layer is compressed again and the pushed descriptors stay right', async () => {
    const recDir = join(store(), 'build-cache', 'blob-info');
    for (const name of (await readdir(recDir)).filter((n) => n.includes('zstd-chunked'))) {
      const rec = JSON.parse(await readFile(join(recDir, name), 'utf8')) as Record<string, unknown>;
      await writeFile(join(recDir, name), JSON.stringify({ ...rec, annotations: { [ZSTD_CHUNKED_MANIFEST_POSITION]: 1 } }));
    }
    const r = await build(['--compression-format', 'zstd:chunked', '--timestamp', '1700000000', '-t', `${reg.host}/third/chunked:1`, join(work, 'ctx')]);
    expect(r.code, r.stderr).toBe(0);
    const first = await manifestOf('app/chunked', '1');
    expect((await manifestOf('third/chunked', '1')).layers).toEqual(first.layers);
  });

  it("push --compression-format zstd:chunked converts a stored image's layers (the base's too), each with a TOC that checks; a bad format is named", async () => {
    const local = await build(['-t', 'localhost/app:local', join(work, 'ctx')]);
    expect(local.code, local.stderr).toBe(0);
    const r = await stevedore(
      ['push', '--root', store(), '--tls-verify=false', '--compression-format', 'zstd:chunked', 'localhost/app:local', `${reg.host}/pushed/chunked:1`],
      { timeoutMs: 120_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const manifest = await manifestOf('pushed/chunked', '1');
    const config = JSON.parse((await blobOf('pushed/chunked', manifest.config.digest)).toString('utf8')) as { rootfs: { diff_ids: string[] } };
    expect(manifest.layers).toHaveLength(baseLayers + 2);
    for (const [i, layer] of manifest.layers.entries()) {
      expect(layer.mediaType).toBe(MediaType.OciLayerZstd);
      const blob = await blobOf('pushed/chunked', layer.digest);
      expect(sha(await unzstdFrames(blob))).toBe(config.rootfs.diff_ids[i]);
      const { toc } = readZstdChunked(blob, layer.annotations, layer.digest);
      for (const e of toc.entries.filter((x) => x.type === 'reg' && (x.size ?? 0) > 0))
        expect(sha(zstdDecompressSync(blob.subarray(e.offset, e.endOffset))), e.name).toBe(e.digest);
    }
    const bad = await stevedore(['push', '--root', store(), '--compression-format', 'brotli', 'localhost/app:local', `${reg.host}/pushed/chunked:2`]);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain('--compression-format must be gzip, zstd or zstd:chunked, got "brotli"');
  });

  it('the registry cache in zstd:chunked: --cache-to writes the entries, a fresh store reads every step back from --cache-from', async () => {
    const cacheRepo = `${reg.host}/cache/chunked`;
    const args = ['--tls-verify=false', '--compression-format', 'zstd:chunked', '--timestamp', '1700000000'];
    const first = await stevedore(['build', '--root', join(work, 'store-c1'), ...args, '--cache-to', cacheRepo, join(work, 'ctx')], { timeoutMs: 180_000 });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain('(2 steps run, 0 from cache');
    const entry = (await (await fetch(`${reg.url}/v2/cache/chunked/tags/list`)).json()) as { tags: string[] };
    const cached = await manifestOf('cache/chunked', entry.tags[0]!);
    expect(cached.layers[0]?.mediaType).toBe(MediaType.OciLayerZstd);
    const fresh = await stevedore(
      ['build', '--root', join(work, 'store-c2'), ...args, '--cache-from', cacheRepo, '-t', 'localhost/cached:1', join(work, 'ctx')],
      { timeoutMs: 180_000 },
    );
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(fresh.stderr).toContain('(0 steps run, 2 from cache');
    // The layers read back (every frame, not the first) make the same image, which runs.
    expect(fresh.stdout.trim()).toBe(first.stdout.trim());
    const ran = await stevedore(
      ['run', '--root', join(work, 'store-c2'), '--rm', 'localhost/cached:1', 'sh', '-c', 'cat /data/run.txt && sha256sum /data/sub/big.bin'],
      { timeoutMs: 120_000 },
    );
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toBe(`built\n${sha(big).slice(7)}  /data/sub/big.bin\n`);
  });
});
