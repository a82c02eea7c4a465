/**
 * The one layer conversion (oci/layer-compression.ts) that the builder's output (`build`/`push
 * --compression-format`) and the copy pipeline (`copy`/`sync --dest-compress-format`) both use:
 * every compression to every other with the tar kept byte for byte, the same blob however the input
 * arrives, the diffID checked in the stream and the zstd:chunked paths alike, and a failure or an
 * abort that names the layer and leaves nothing in the directory.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync, zstdDecompressSync } from 'node:zlib';
import tar from 'tar-stream';
import { afterAll, describe, expect, it } from 'vitest';
import type { Digest } from '../../src/oci/digest.js';
import { convertLayerToFile, layerMediaType, type LayerCompression } from '../../src/oci/layer-compression.js';
import { MediaType } from '../../src/oci/mediatype.js';
import { readZstdChunked } from '../../src/oci/zstd-chunked-format.js';
import { ZstdFramesDecompress } from '../../src/oci/zstd-frames.js';
import { ParallelGzip } from '../../src/build/layers/parallel-gzip.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';

const tmp = new TempDirs();
afterAll(() => tmp.cleanup());

const sha = (b: Buffer): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function readAll(s: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A layer tar: a small file, a 1 MiB random one, an empty one. */
async function layerTar(): Promise<Buffer> {
  const pack = tar.pack();
  const files = { 'etc/a.txt': Buffer.from('alpha\n'), 'bin/big': randomBytes(1024 * 1024 + 5), empty: Buffer.alloc(0) };
  for (const [name, content] of Object.entries(files)) pack.entry({ name, size: content.length, mode: 0o644, mtime: new Date(1_700_000_000_000) }, content);
  pack.finalize();
  return readAll(pack as unknown as Readable);
}

/** `bytes` as a stream cut into pieces of `size` (a network read arrives cut however it comes). */
function cut(bytes: Buffer, size: number): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) parts.push(bytes.subarray(i, i + size));
  return Readable.from(parts);
}

/** Any of the four forms read back as the tar (every zstd frame, not only the first). */
async function untar(blob: Buffer, from: LayerCompression): Promise<Buffer> {
  if (from === 'gzip') return gunzipSync(blob);
  if (from === 'none') return blob;
  return readAll(Readable.from([blob]).pipe(new ZstdFramesDecompress()));
}

describe('layerMediaType', () => {
  it('keeps the OCI or Docker family, and names zstd as OCI (Docker has no zstd type)', () => {
    expect(layerMediaType(MediaType.OciLayer, 'gzip')).toBe(MediaType.OciLayerGzip);
    expect(layerMediaType(MediaType.DockerLayer, 'gzip')).toBe(MediaType.DockerLayerGzip);
    expect(layerMediaType(MediaType.DockerLayerGzip, 'none')).toBe(MediaType.DockerLayer);
    expect(layerMediaType(MediaType.OciLayerZstd, 'none')).toBe(MediaType.OciLayer);
    expect(layerMediaType(MediaType.DockerLayer, 'zstd')).toBe(MediaType.OciLayerZstd);
    expect(layerMediaType(MediaType.DockerLayerGzip, 'zstd:chunked')).toBe(MediaType.OciLayerZstd);
  });
});

describe('convertLayerToFile', () => {
  const forms: LayerCompression[] = ['none', 'gzip', 'zstd', 'zstd:chunked'];

  it('converts every form to every other, the tar kept byte for byte, into a file named for its digest', async () => {
    const layer = await layerTar();
    const diffID = sha(layer);
    // Each form made once from the plain tar (the builder's side), then read as the source of the others (copy's).
    const made = new Map<LayerCompression, Buffer>();
    for (const to of forms) {
      const dir = await tmp.make('lc-from-tar');
      const r = await convertLayerToFile(cut(layer, 7_000), dir, { from: 'none', to, what: 'layer x', diffID });
      const blob = await readFile(r.path);
      expect(r.path.endsWith(`${r.digest.slice('sha256:'.length)}${to === 'gzip' ? '.tar.gz' : to === 'none' ? '.tar' : '.tar.zst'}`)).toBe(true);
      expect(await readdir(dir)).toEqual([r.path.slice(dir.length + 1)]);
      expect(sha(blob)).toBe(r.digest);
      expect(blob.length).toBe(r.size);
      expect((await untar(blob, to)).equals(layer), to).toBe(true);
      if (to === 'zstd:chunked') {
        const { toc } = readZstdChunked(blob, r.annotations);
        const big = toc.entries.find((e) => e.name === 'bin/big')!;
        expect(sha(zstdDecompressSync(blob.subarray(big.offset, big.endOffset)))).toBe(big.digest);
      } else {
        expect(r.annotations).toBeUndefined();
      }
      made.set(to, blob);
    }
    for (const from of forms) {
      for (const to of forms) {
        if (from === to) continue;
        const src = from === 'zstd:chunked' ? 'zstd' : from;
        const r = await convertLayerToFile(cut(made.get(from)!, 65_536), await tmp.make('lc-conv'), { from: src, to, what: `layer ${from}` });
        const blob = await readFile(r.path);
        expect((await untar(blob, to)).equals(layer), `${from} -> ${to}`).toBe(true);
        // The same layer converted again, from any form, cut any way: the same blob (so a destination reuses it).
        expect(r.digest, `${from} -> ${to}`).toBe(sha(made.get(to)!));
      }
    }
  });

  it("gzip takes the caller's encoder (the builder's ParallelGzip) and its level; zlib's own otherwise", async () => {
    const layer = await layerTar();
    const zlib = await convertLayerToFile(Readable.from([layer]), await tmp.make('lc-gz'), { from: 'none', to: 'gzip', level: 9, what: 'layer x' });
    expect((await readFile(zlib.path)).equals(gzipSync(layer, { level: 9 }))).toBe(true);
    const levels: (number | undefined)[] = [];
    const parallel = await convertLayerToFile(Readable.from([layer]), await tmp.make('lc-pgz'), {
      from: 'none',
      to: 'gzip',
      level: 6,
      gzip: (level) => {
        levels.push(level);
        return new ParallelGzip({ level: level ?? 6, blockSize: 256 * 1024 });
      },
      what: 'layer x',
    });
    expect(levels).toEqual([6]);
    const blob = await readFile(parallel.path);
    expect(parallel.digest).not.toBe(zlib.digest);
    expect(gunzipSync(blob).equals(layer)).toBe(true);
  });

  it('a tar that is not the diffID fails, stream or zstd:chunked, naming the layer; nothing is left', async () => {
    const layer = await layerTar();
    const wrong = `sha256:${'ab'.repeat(32)}` as Digest;
    for (const to of forms) {
      const dir = await tmp.make('lc-diff');
      await expect(convertLayerToFile(cut(layer, 10_000), dir, { from: 'none', to, what: 'layer sha256:feed', diffID: wrong }), to).rejects.toThrow(
        `layer sha256:feed: uncompressed tar: digest mismatch: expected ${wrong}, got ${sha(layer)}`,
      );
      expect(await readdir(dir), to).toEqual([]);
    }
  });

  it('a corrupt compressed input is an error naming the layer; nothing is left', async () => {
    const layer = await layerTar();
    const gz = gzipSync(layer);
    const broken = Buffer.concat([gz.subarray(0, 20_000), Buffer.alloc(64, 0xff), gz.subarray(20_064)]);
    for (const to of ['zstd', 'zstd:chunked', 'none'] as const) {
      const dir = await tmp.make('lc-corrupt');
      await expect(convertLayerToFile(cut(broken, 4_096), dir, { from: 'gzip', to, what: 'layer sha256:beef' }), to).rejects.toThrow(/^layer sha256:beef: /);
      expect(await readdir(dir), to).toEqual([]);
    }
    const notZstd = await tmp.make('lc-notzstd');
    await expect(convertLayerToFile(Readable.from([gz]), notZstd, { from: 'zstd', to: 'gzip', what: 'layer sha256:cafe' })).rejects.toThrow(
      /^layer sha256:cafe: not zstd data/,
    );
    expect(await readdir(notZstd)).toEqual([]);
  });

  it('an abort stops the conversion and the source, leaving nothing', async () => {
    const layer = await layerTar();
    for (const to of ['gzip', 'zstd:chunked'] as const) {
      const dir = await tmp.make('lc-abort');
      const ac = new AbortController();
      let destroyed = false;
      let sent = false;
      // A source that delivers a little, then stalls (a download that hangs) until the abort.
      const source = new Readable({
        read() {
          if (sent) return;
          sent = true;
          this.push(layer.subarray(0, 4096));
          setTimeout(() => ac.abort(), 20);
        },
        destroy(err, cb) {
          destroyed = true;
          cb(err);
        },
      });
      await expect(convertLayerToFile(source, dir, { from: 'none', to, what: 'layer x', signal: ac.signal }), to).rejects.toThrow(/abort/i);
      expect(destroyed, to).toBe(true);
      expect(await readdir(dir), to).toEqual([]);
    }
  });
});
