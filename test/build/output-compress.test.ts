/**
 * The compressor that gzips the store's plain layers when an image leaves the machine: the same
 * bytes every time, a remembered gzip digest per diffID (a second build compresses nothing until a
 * blob must actually be sent, and then makes the same bytes again), and nothing sent unverified.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync, zstdDecompressSync } from 'node:zlib';
import tar from 'tar-stream';
import { afterAll, describe, expect, it } from 'vitest';
import { LayerCompressor } from '../../src/build/output/compress.js';
import type { BuiltLayer } from '../../src/build/executor/state.js';
import { digestBytes } from '../../src/oci/digest.js';
import { OciLayout } from '../../src/oci/layout.js';
import { MediaType } from '../../src/oci/mediatype.js';
import { readZstdChunked } from '../../src/oci/zstd-chunked-format.js';
import { ZstdFramesDecompress } from '../../src/oci/zstd-frames.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';

const tmp = new TempDirs();
afterAll(() => tmp.cleanup());

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A store layout holding one plain "layer" (~9 MiB: three of ParallelGzip's blocks, half random). */
async function storeWithLayer(): Promise<{ layout: OciLayout; cacheDir: string; layer: BuiltLayer; bytes: Buffer }> {
  const root = await tmp.make('compress-store');
  const layout = await OciLayout.open(join(root, 'images'), { create: true });
  const bytes = Buffer.concat([randomBytes(5 * 1024 * 1024), Buffer.alloc(4 * 1024 * 1024 + 123, 'text ')]);
  const digest = await layout.writeBlobBytes(bytes);
  return { layout, cacheDir: join(root, 'build-cache'), layer: { mediaType: MediaType.OciLayer, digest, size: bytes.length, diffID: digest }, bytes };
}

/** A store layout holding one plain layer that is a real tar (zstd:chunked walks its entries). */
async function storeWithTar(files: Record<string, Buffer>): Promise<{ layout: OciLayout; cacheDir: string; layer: BuiltLayer; bytes: Buffer }> {
  const pack = tar.pack();
  for (const [name, content] of Object.entries(files)) pack.entry({ name, size: content.length, mode: 0o644, mtime: new Date(1_700_000_000_000) }, content);
  pack.finalize();
  const bytes = await readAll(pack as unknown as Readable);
  const root = await tmp.make('chunked-store');
  const layout = await OciLayout.open(join(root, 'images'), { create: true });
  const digest = await layout.writeBlobBytes(bytes);
  return { layout, cacheDir: join(root, 'build-cache'), layer: { mediaType: MediaType.OciLayer, digest, size: bytes.length, diffID: digest }, bytes };
}

async function unzstdFrames(blob: Buffer): Promise<Buffer> {
  const out: Buffer[] = [];
  const d = new ZstdFramesDecompress();
  d.on('data', (c: Buffer) => out.push(c));
  await pipeline(Readable.from([blob]), d);
  return Buffer.concat(out);
}

describe('LayerCompressor with --compression-format zstd:chunked', () => {
  const files = { 'a.txt': Buffer.from('alpha\n'), 'big.bin': randomBytes(3 * 1024 * 1024 + 17), empty: Buffer.alloc(0) };

  it('writes the layer as zstd:chunked with its TOC annotations; a later build reuses the variant, annotations included', async () => {
    const { layout, cacheDir, layer, bytes } = await storeWithTar(files);
    const first = new LayerCompressor(layout, cacheDir, await tmp.make('chunked-1'), 'zstd:chunked');
    const one = await first.compressed(layer);
    expect(one.mediaType).toBe(MediaType.OciLayerZstd);
    expect(Object.keys(one.annotations ?? {}).sort()).toEqual([
      'io.github.containers.zstd-chunked.manifest-checksum',
      'io.github.containers.zstd-chunked.manifest-position',
      'io.github.containers.zstd-chunked.tarsplit-position',
    ]);
    const blob = await readAll(await first.open(one));
    expect(digestBytes(blob)).toBe(one.digest);
    expect((await unzstdFrames(blob)).equals(bytes)).toBe(true);
    const { toc } = readZstdChunked(blob, one.annotations);
    for (const [name, content] of Object.entries(files)) {
      const e = toc.entries.find((x) => x.name === name)!;
      expect(e.size ?? 0, name).toBe(content.length);
      if (content.length > 0) expect(zstdDecompressSync(blob.subarray(e.offset, e.endOffset)).equals(content), name).toBe(true);
    }
    // Not the zstd variant's record: another blob.
    const plainZstd = await new LayerCompressor(layout, cacheDir, await tmp.make('chunked-z'), 'zstd').compressed(layer);
    expect(plainZstd.digest).not.toBe(one.digest);
    expect(plainZstd.annotations).toBeUndefined();
    await first.cleanup();
    // Another run: remembered with its annotations, nothing written ahead of a send, the same bytes when sent.
    const scratch = await tmp.make('chunked-2');
    const second = new LayerCompressor(layout, cacheDir, scratch, 'zstd:chunked');
    expect(await second.compressed(layer)).toEqual(one);
    expect(await readdir(scratch)).toEqual([]);
    expect(digestBytes(await readAll(await second.open(one)))).toBe(one.digest);
    await second.cleanup();
    // A record without the annotations (an older or damaged one) is no record: compressed again.
    const [record] = (await readdir(join(cacheDir, 'blob-info'))).filter((n) => n.includes('zstd-chunked'));
    await writeFile(join(cacheDir, 'blob-info', record!), JSON.stringify({ digest: one.digest, size: one.size }));
    const third = new LayerCompressor(layout, cacheDir, await tmp.make('chunked-3'), 'zstd:chunked');
    expect(await third.compressed(layer)).toEqual(one);
    expect(JSON.parse(await readFile(join(cacheDir, 'blob-info', record!), 'utf8')).annotations).toEqual(one.annotations);
    await third.cleanup();
    // A record whose annotations are strings but not the blob's (edited): the blob is not sent under them.
    const position = 'io.github.containers.zstd-chunked.manifest-position';
    const forged = { ...one.annotations, [position]: '8:1:1:1' };
    await writeFile(join(cacheDir, 'blob-info', record!), JSON.stringify({ digest: one.digest, size: one.size, annotations: forged }));
    const fourth = new LayerCompressor(layout, cacheDir, await tmp.make('chunked-4'), 'zstd:chunked');
    const claimed = await fourth.compressed(layer);
    expect(claimed.annotations?.[position]).toBe('8:1:1:1');
    await expect(fourth.open(claimed)).rejects.toThrow(
      `blob-info record of layer ${layer.diffID} (${one.digest}): its zstd:chunked annotations do not match the blob's table of contents`,
    );
    await fourth.cleanup();
  });
});

describe('LayerCompressor with --compression-format zstd', () => {
  it('zstd-compresses a plain layer to the same bytes every time, remembered apart from its gzip form', async () => {
    const { layout, cacheDir, layer, bytes } = await storeWithLayer();
    const gzip = await new LayerCompressor(layout, cacheDir, await tmp.make('compress-g')).compressed(layer);
    const z1 = new LayerCompressor(layout, cacheDir, await tmp.make('compress-z1'), 'zstd');
    const one = await z1.compressed(layer);
    expect(one.mediaType).toBe(MediaType.OciLayerZstd);
    expect(one.digest).not.toBe(gzip.digest);
    const zst = await readAll(await z1.open(one));
    expect(digestBytes(zst)).toBe(one.digest);
    expect(zstdDecompressSync(zst).equals(bytes)).toBe(true);
    // Another run: the remembered zstd digest, and the same bytes made again when sent.
    const z2 = new LayerCompressor(layout, cacheDir, await tmp.make('compress-z2'), 'zstd');
    const two = await z2.compressed(layer);
    expect(two).toEqual(one);
    expect(digestBytes(await readAll(await z2.open(two)))).toBe(one.digest);
    // Docker's plain type cannot be named as zstd: the OCI type is used.
    expect((await z2.compressed({ ...layer, mediaType: 'application/vnd.docker.image.rootfs.diff.tar' })).mediaType).toBe(MediaType.OciLayerZstd);
  });
});

describe('LayerCompressor', () => {
  it('gzips a plain layer once, to the same bytes every time, and passes compressed layers through', async () => {
    const { layout, cacheDir, layer, bytes } = await storeWithLayer();
    const a = new LayerCompressor(layout, cacheDir, await tmp.make('compress-a'));
    const [one, again] = await Promise.all([a.compressed(layer), a.compressed(layer)]);
    expect(again).toEqual(one);
    expect(one.mediaType).toBe(MediaType.OciLayerGzip);
    expect(one.diffID).toBe(layer.diffID);
    const gz = await readAll(await a.open(one));
    expect(digestBytes(gz)).toBe(one.digest);
    expect(gz.length).toBe(one.size);
    expect(gunzipSync(gz).equals(bytes)).toBe(true);
    // Docker's plain type gets Docker's gzip type; a gzip layer is left as it is.
    expect((await a.compressed({ ...layer, mediaType: 'application/vnd.docker.image.rootfs.diff.tar' })).mediaType).toBe(MediaType.DockerLayerGzip);
    const pulled = { ...one, mediaType: MediaType.OciLayerGzip };
    expect(await a.compressed(pulled)).toBe(pulled);
    await a.cleanup();
    // Another store compressing the same tar gets the same digest (reproducible pushes).
    const other = await storeWithLayer();
    await other.layout.writeBlobBytes(bytes);
    const b = new LayerCompressor(other.layout, other.cacheDir, await tmp.make('compress-b'));
    expect((await b.compressed(layer)).digest).toBe(one.digest);
    await b.cleanup();
  });

  it('a later build names the remembered gzip blob without compressing, makes the same bytes when one must be sent, and refuses a wrong record', async () => {
    const { layout, cacheDir, layer, bytes } = await storeWithLayer();
    const first = new LayerCompressor(layout, cacheDir, await tmp.make('compress-1'));
    const sent = await first.compressed(layer);
    await first.cleanup();
    const scratch = await tmp.make('compress-2');
    const second = new LayerCompressor(layout, cacheDir, scratch);
    expect(await second.compressed(layer)).toEqual(sent);
    expect(await readdir(scratch)).toEqual([]); // nothing compressed ahead of a send
    const again = await readAll(await second.open(sent));
    expect(digestBytes(again)).toBe(sent.digest);
    expect(gunzipSync(again).equals(bytes)).toBe(true);
    await second.cleanup();
    // A record that does not match what the tar gives: the stream fails rather than send other bytes.
    const [record] = (await readdir(join(cacheDir, 'blob-info'))).filter((n) => n.endsWith('.json'));
    const wrong = { digest: `sha256:${'ab'.repeat(32)}`, size: sent.size };
    await writeFile(join(cacheDir, 'blob-info', record!), JSON.stringify(wrong));
    const third = new LayerCompressor(layout, cacheDir, await tmp.make('compress-3'));
    const claimed = await third.compressed(layer);
    expect(claimed.digest).toBe(wrong.digest);
    await expect(readAll(await third.open(claimed))).rejects.toThrow(/digest|mismatch/i);
    await third.cleanup();
    // An unreadable record is no record: the layer is compressed again.
    await writeFile(join(cacheDir, 'blob-info', record!), 'not json');
    const fourth = new LayerCompressor(layout, cacheDir, await tmp.make('compress-4'));
    expect((await fourth.compressed(layer)).digest).toBe(sent.digest);
    expect(JSON.parse(await readFile(join(cacheDir, 'blob-info', record!), 'utf8'))).toEqual({ digest: sent.digest, size: sent.size });
    await fourth.cleanup();
  });

  it('a blob it neither made nor has is an error naming it', async () => {
    const { layout, cacheDir } = await storeWithLayer();
    const c = new LayerCompressor(layout, cacheDir, await tmp.make('compress-x'));
    const missing = `sha256:${'cd'.repeat(32)}` as const;
    await expect(c.open({ digest: missing, size: 10 })).rejects.toThrow(
      new RegExp(`blob ${missing} is neither in the store nor a layer this build compressed`),
    );
    await c.cleanup();
  });
});
