/**
 * zstd:chunked output (issue 16 "Compression"): the writer's blob is the layer's tar when read as
 * plain zstd, and its TOC, found through the footer or the layer annotations, gives every file's
 * frame, digest and size; the tar-split data rebuilds the tar byte for byte. Then end to end: copy
 * to a real registry with --dest-compress-format zstd:chunked, and podman pulls and runs the result.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { Crc64Iso } from '../../src/oci/crc64.js';
import { MediaType } from '../../src/oci/mediatype.js';
import { writeZstdChunked } from '../../src/oci/zstd-chunked.js';
import { ZstdFramesDecompress } from '../../src/oci/zstd-frames.js';
import {
  decodeFooter,
  readZstdChunked,
  ZSTD_CHUNKED_MANIFEST_CHECKSUM,
  ZSTD_CHUNKED_MANIFEST_POSITION,
  ZSTD_CHUNKED_TARSPLIT_POSITION,
} from '../../src/oci/zstd-chunked-format.js';
import { parseImageName } from '../../src/transports/index.js';
import { makeBusyboxImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { runCommand } from '../../hack/lib/harness/procs.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { cleanupCli, stevedore } from '../cli/stevedore.js';
import { createStableZstdCompress } from '../../src/oci/zstd-compress.js';

const temps = new TempDirs();
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** The reference decoder: the zstd command line (it reads every frame and skips skippable ones). */
function zstdCli(blob: Buffer): Buffer {
  const r = spawnSync('zstd', ['-d', '-c', '-q'], { input: blob, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`zstd -d failed: ${r.stderr.toString()}`);
  return r.stdout;
}

/** Ours (oci/zstd-frames.ts), fed in odd-sized chunks so frame and block headers straddle writes. */
async function zstdOurs(blob: Buffer, chunk = 1000): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let i = 0; i < blob.length; i += chunk) parts.push(blob.subarray(i, i + chunk));
  const out: Buffer[] = [];
  await pipeline(Readable.from(parts), new ZstdFramesDecompress(), async (src: AsyncIterable<Buffer>) => {
    for await (const c of src) out.push(c);
  });
  return Buffer.concat(out);
}

async function packTar(add: (pack: tar.Pack) => void): Promise<Buffer> {
  const pack = tar.pack();
  add(pack);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function chunked(input: Buffer, chunkSize = 7_000): Promise<{ blob: Buffer; result: Awaited<ReturnType<typeof writeZstdChunked>> }> {
  const file = join(await temps.make('zc'), 'blob');
  // Odd-sized chunks: entry boundaries never coincide with the reads.
  const parts: Buffer[] = [];
  for (let i = 0; i < input.length; i += chunkSize) parts.push(input.subarray(i, i + chunkSize));
  const result = await writeZstdChunked(Readable.from(parts), file);
  return { blob: await readFile(file), result };
}

/** Checks every regular file's frame, then rebuilds the tar from the tar-split data and the frames. */
function checkToc(blob: Buffer, annotations: Record<string, string>, original: Buffer, expected: Map<string, Buffer>): void {
  const viaFooter = readZstdChunked(blob);
  const viaAnnotations = readZstdChunked(blob, annotations);
  expect(viaAnnotations.toc).toEqual(viaFooter.toc);
  const { toc, tarSplit } = viaAnnotations;
  expect(toc.version).toBe(1);
  const regs = toc.entries.filter((e) => e.type === 'reg' && (e.size ?? 0) > 0);
  expect(new Set(regs.map((e) => e.name))).toEqual(new Set(expected.keys()));
  const byName = new Map<string, Buffer>();
  for (const e of regs) {
    expect(e.offset).toBeGreaterThan(0);
    expect(e.endOffset).toBeGreaterThan(e.offset!);
    const content = zstdDecompressSync(blob.subarray(e.offset, e.endOffset));
    expect(content.length, e.name).toBe(e.size);
    expect(sha(content), e.name).toBe(e.digest);
    expect(content.equals(expected.get(e.name)!), e.name).toBe(true);
    byName.set(e.name, content);
  }
  // tar-split: segments verbatim, file entries by name with their CRC-64; the result is the tar.
  const rebuilt: Buffer[] = [];
  const lines = tarSplit
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: number; name?: string; size?: number; payload: string | null; position: number });
  lines.forEach((l, i) => expect(l.position).toBe(i));
  for (const l of lines) {
    if (l.type === 2) rebuilt.push(Buffer.from(l.payload!, 'base64'));
    else if (l.size) {
      const content = byName.get(l.name!)!;
      expect(Buffer.from(l.payload!, 'base64').equals(new Crc64Iso().update(content).digest()), l.name).toBe(true);
      rebuilt.push(content);
    }
  }
  expect(Buffer.concat(rebuilt).equals(original)).toBe(true);
}

afterAll(async () => {
  await temps.cleanup();
  await cleanupCli();
});

describe('the zstd:chunked writer', () => {
  it('CRC-64 is the ISO polynomial Go uses (check value of "123456789")', () => {
    expect(new Crc64Iso().update(Buffer.from('123456789')).digest().toString('hex')).toBe('b90956c775a41001');
  });

  it('decompresses as plain zstd to the same tar, and the TOC gives every file its frame, digest and size', async () => {
    const files = new Map<string, Buffer>([
      ['etc/small.conf', Buffer.from('hello\n')],
      ['usr/lib/big.bin', randomBytes(3 * 1024 * 1024 + 17)], // over 1 MiB: the streamed path
      [`deep/${'d'.repeat(120)}/long-name.txt`, Buffer.from('a PAX path\n')],
      ['bin/tool', randomBytes(513)],
    ]);
    const input = await packTar((p) => {
      p.entry({ name: 'etc/', type: 'directory', mode: 0o755 });
      p.entry({ name: 'etc/small.conf', mode: 0o644, uid: 1000, gid: 1000, uname: 'app', gname: 'app' }, files.get('etc/small.conf')!);
      p.entry({ name: 'etc/empty', mode: 0o600 }, Buffer.alloc(0));
      p.entry({ name: 'usr/lib/big.bin', mode: 0o644 }, files.get('usr/lib/big.bin')!);
      p.entry({ name: `deep/${'d'.repeat(120)}/long-name.txt`, mode: 0o644 }, files.get(`deep/${'d'.repeat(120)}/long-name.txt`)!);
      p.entry({ name: 'bin/tool', mode: 0o755, pax: { 'SCHILY.xattr.user.note': 'tagged', mtime: '1700000000.123456789' } }, files.get('bin/tool')!);
      p.entry({ name: 'bin/link', type: 'symlink', linkname: 'tool' });
      p.entry({ name: 'bin/hard', type: 'link', linkname: 'bin/tool' });
      p.entry({ name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 });
    });
    const { blob, result } = await chunked(input);
    expect(zstdCli(blob).equals(input)).toBe(true);
    expect((await zstdOurs(blob)).equals(input)).toBe(true);
    expect(result.diffId).toBe(sha(input));
    expect(result.digest).toBe(sha(blob));
    expect(result.size).toBe(blob.length);
    expect(Object.keys(result.annotations).sort()).toEqual(
      [ZSTD_CHUNKED_MANIFEST_CHECKSUM, ZSTD_CHUNKED_MANIFEST_POSITION, ZSTD_CHUNKED_TARSPLIT_POSITION].sort(),
    );
    // The footer and the annotations name the same places.
    const f = decodeFooter(blob)!;
    expect(result.annotations[ZSTD_CHUNKED_MANIFEST_POSITION]).toBe(`${f.tocOffset}:${f.tocLength}:${f.tocUncompressed}:1`);
    expect(result.annotations[ZSTD_CHUNKED_TARSPLIT_POSITION]).toBe(`${f.tarSplitOffset}:${f.tarSplitLength}:${f.tarSplitUncompressed}`);
    expect(blob.subarray(blob.length - 8).toString('latin1')).toBe('GNUlInUx');
    checkToc(blob, result.annotations, input, files);
    const { toc } = readZstdChunked(blob, result.annotations);
    const entry = (name: string) => toc.entries.find((e) => e.name === name);
    expect(entry('etc/')).toMatchObject({ type: 'dir', mode: 0o755 });
    expect(entry('etc/small.conf')).toMatchObject({ type: 'reg', uid: 1000, gid: 1000, size: 6 });
    expect(entry('etc/empty')).toMatchObject({ type: 'reg' });
    expect(entry('etc/empty')!.digest).toBeUndefined();
    expect(entry('bin/link')).toMatchObject({ type: 'symlink', linkName: 'tool' });
    expect(entry('bin/hard')).toMatchObject({ type: 'hardlink', linkName: 'bin/tool' });
    expect(entry('dev/null')).toMatchObject({ type: 'char', devMajor: 1, devMinor: 3 });
    expect(entry('bin/tool')!.xattrs).toEqual({ 'user.note': Buffer.from('tagged').toString('base64') });
    // Times as Go writes them: no fraction when whole, every PAX digit kept otherwise.
    expect(entry('bin/tool')!.modtime).toBe('2023-11-14T22:13:20.123456789Z');
    expect(entry('etc/')!.modtime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(toc.entries).toHaveLength(9);
  });

  it('writes the same bytes however the tar arrives (a second conversion of the same layer is the same blob)', async () => {
    // Compressible and over 1 MiB (the streamed path): zstd's output there depended on how the input was cut.
    const text = Buffer.from(Array.from({ length: 60_000 }, (_, i) => `line ${i} of a log file, ${i % 97} things happened\n`).join(''));
    const input = await packTar((p) => p.entry({ name: 'var/log/big.log', mode: 0o644 }, text));
    const digests = new Set<string>();
    for (const size of [7_000, 65_536, 1024 * 1024 + 3, input.length]) digests.add((await chunked(input, size)).result.digest);
    expect([...digests]).toHaveLength(1);
  });

  it('plain zstd (copy --dest-compress-format zstd, build --compression-format zstd) is the same blob however its input is cut', async () => {
    const text = Buffer.from(Array.from({ length: 60_000 }, (_, i) => `line ${i} of a log file, ${i % 97} things happened\n`).join(''));
    const digests = new Set<string>();
    for (const size of [7_000, 65_536, text.length]) {
      const parts: Buffer[] = [];
      for (let i = 0; i < text.length; i += size) parts.push(text.subarray(i, i + size));
      const z = createStableZstdCompress(3);
      Readable.from(parts).pipe(z);
      const h = createHash('sha256');
      for await (const c of z) h.update(c as Buffer);
      digests.add(h.digest('hex'));
    }
    expect([...digests]).toHaveLength(1);
  });

  it('reads GNU tar output (long names as GNU extension headers) and keeps it byte for byte', async () => {
    const dir = await temps.make('gnutar');
    const long = `${'n'.repeat(140)}.txt`;
    await mkdir(join(dir, 'root', 'sub'), { recursive: true });
    const files = new Map<string, Buffer>([
      [`./sub/${long}`, randomBytes(70_000)],
      ['./sub/a', Buffer.from('a\n')],
    ]);
    for (const [name, data] of files) await writeFile(join(dir, 'root', name), data);
    await symlink('a', join(dir, 'root', 'sub', 'to-a'));
    const tarFile = join(dir, 'layer.tar');
    const r = spawnSync('tar', ['--format=gnu', '-C', join(dir, 'root'), '-cf', tarFile, '.'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const input = await readFile(tarFile);
    const { blob, result } = await chunked(input, 4096);
    expect(zstdCli(blob).equals(input)).toBe(true);
    expect((await zstdOurs(blob, 4093)).equals(input)).toBe(true);
    checkToc(blob, result.annotations, input, files);
  });

  it('cuts long runs of headers (5,000 empty files) into several frames and segments, still byte for byte', async () => {
    const files = new Map<string, Buffer>([['last', Buffer.from('content after the run\n')]]);
    const input = await packTar((p) => {
      for (let i = 0; i < 5000; i++) p.entry({ name: `empty/${i}`, mode: 0o644 }, Buffer.alloc(0));
      p.entry({ name: 'last', mode: 0o644 }, files.get('last')!);
    });
    const { blob, result } = await chunked(input, 65536);
    expect(zstdCli(blob).equals(input)).toBe(true);
    checkToc(blob, result.annotations, input, files);
    const segments = readZstdChunked(blob)
      .tarSplit.trimEnd()
      .split('\n')
      .filter((l) => l.startsWith('{"type":2'));
    // Each file entry ends a segment; the 2.5 MB of headers before `last` went out as several frames.
    expect(segments.length).toBeGreaterThanOrEqual(5001);
    expect(result.entries).toBe(5001);
  });

  it("the frame reader reads what Node's own zstd reader drops after the first frame, and refuses a cut stream", async () => {
    const frames = Buffer.concat([zstdCompressSync(Buffer.from('one ')), zstdCompressSync(Buffer.alloc(300_000, 7)), zstdCompressSync(Buffer.from(' three'))]);
    expect(zstdDecompressSync(frames).toString()).toBe('one '); // Node stops after the first frame: why zstd-frames.ts exists
    const want = Buffer.concat([Buffer.from('one '), Buffer.alloc(300_000, 7), Buffer.from(' three')]);
    for (const chunk of [1, 3, 7, 1 << 20]) expect((await zstdOurs(frames, chunk)).equals(want), `chunks of ${chunk}`).toBe(true);
    await expect(zstdOurs(frames.subarray(0, frames.length - 3))).rejects.toThrow(/zstd stream ends inside a frame/);
    // A frame that decompresses past the one-call limit (20 MiB of zeros in a few hundred bytes) and
    // one over the one-call compressed size (2 MiB of random bytes) go through the stream instead.
    const zeros = Buffer.alloc(20 << 20);
    const noise = randomBytes(2 << 20);
    const big = Buffer.concat([zstdCompressSync(zeros), zstdCompressSync(noise), zstdCompressSync(Buffer.from('end'))]);
    expect((await zstdOurs(big, 1 << 22)).equals(Buffer.concat([zeros, noise, Buffer.from('end')]))).toBe(true);
    await expect(zstdOurs(Buffer.from('not zstd at all'))).rejects.toThrow(/unknown frame magic/);
  });

  it('refuses a truncated tar, an oversized PAX record and a corrupted TOC, naming what is wrong', async () => {
    const input = await packTar((p) => p.entry({ name: 'f', mode: 0o644 }, randomBytes(5000)));
    const file = join(await temps.make('zc-bad'), 'blob');
    await expect(writeZstdChunked(Readable.from([input.subarray(0, 2048)]), file, { what: 'layer sha256:abc' })).rejects.toThrow(
      /layer sha256:abc: the tar ends inside an entry/,
    );
    // More than 1 MiB after the end-of-archive blocks is refused, not carried in the tar-split data.
    await expect(writeZstdChunked(Readable.from([input, Buffer.alloc((1 << 20) + 1)]), file, { what: 'layer sha256:abc' })).rejects.toThrow(
      /more than 1048576 bytes after the end of the tar/,
    );
    // A PAX record announcing more than 1 MiB is refused before it is read into memory.
    const hostile = await packTar((p) => p.entry({ name: 'x', mode: 0o644, pax: { comment: 'y'.repeat((1 << 20) + 10) } }, Buffer.from('x')));
    await expect(writeZstdChunked(Readable.from([hostile]), file, { what: 'layer sha256:def' })).rejects.toThrow(
      /layer sha256:def: tar pax-header record of \d+ bytes at entry 1 \(at most 1048576\)/,
    );
    const { blob, result } = await chunked(input);
    const bad = Buffer.from(blob);
    const [tocOffset] = result.annotations[ZSTD_CHUNKED_MANIFEST_POSITION]!.split(':').map(Number);
    bad[tocOffset! + 5]! ^= 0xff;
    expect(() => readZstdChunked(bad, result.annotations)).toThrow(/TOC does not match io.github.containers.zstd-chunked.manifest-checksum/);
  });
});

describe('copy --dest-compress-format zstd:chunked to a registry', () => {
  let reg: TestRegistry;
  let image: FixtureImage;
  beforeAll(async () => {
    reg = await startRegistry({ name: 'zstd-chunked' });
    image = await makeBusyboxImage(await temps.make('bb'), 'v1');
    await copyReference(parseImageName(image.ociRef), parseImageName(`docker://${reg.host}/src/bb:1`));
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('writes zstd layers with the TOC annotations; the diffIDs stay; podman pulls and runs it', async () => {
    const r = await stevedore(['copy', '-q', '--dest-compress-format', 'zstd:chunked', `docker://${reg.host}/src/bb:1`, `docker://${reg.host}/dst/bb:chunked`]);
    expect(r.code, r.stderr).toBe(0);
    const res = await fetch(`${reg.url}/v2/dst/bb/manifests/chunked`, { headers: { accept: MediaType.OciManifest } });
    const manifest = (await res.json()) as {
      mediaType: string;
      config: { digest: string };
      layers: { mediaType: string; digest: string; annotations?: Record<string, string> }[];
    };
    expect(manifest.mediaType).toBe(MediaType.OciManifest);
    const config = (await (await fetch(`${reg.url}/v2/dst/bb/blobs/${manifest.config.digest}`)).json()) as { rootfs: { diff_ids: string[] } };
    expect(config.rootfs.diff_ids).toEqual(image.diffIds);
    for (const [i, layer] of manifest.layers.entries()) {
      expect(layer.mediaType).toBe(MediaType.OciLayerZstd);
      expect(layer.annotations?.[ZSTD_CHUNKED_MANIFEST_CHECKSUM]).toMatch(/^sha256:[a-f0-9]{64}$/);
      const blob = Buffer.from(await (await fetch(`${reg.url}/v2/dst/bb/blobs/${layer.digest}`)).arrayBuffer());
      expect(sha(blob)).toBe(layer.digest);
      const tarBytes = zstdCli(blob);
      expect((await zstdOurs(blob, 65536)).equals(tarBytes)).toBe(true);
      expect(sha(tarBytes)).toBe(config.rootfs.diff_ids[i]);
      const { toc } = readZstdChunked(blob, layer.annotations);
      const busybox = toc.entries.find((e) => e.name === 'bin/busybox')!;
      expect(sha(zstdDecompressSync(blob.subarray(busybox.offset, busybox.endOffset)))).toBe(sha(await readFile('/usr/bin/busybox')));
    }
    // A second copy of the same source converts to the same blob (deterministic), so nothing is sent again.
    const again = await stevedore(['copy', '--dest-compress-format', 'zstd:chunked', `docker://${reg.host}/src/bb:1`, `docker://${reg.host}/dst/bb:again`]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout + again.stderr).toMatch(/Copying blob \S+ skipped: already exists/);
    // Podman 4.3 reads the layer as plain zstd (its partial pulls need podman >= 5 and an overlay store).
    const work = await temps.make('podman');
    const podman = await runCommand(
      'podman',
      [
        '--root',
        join(work, 'root'),
        '--runroot',
        join(work, 'run'),
        '--storage-driver',
        'vfs',
        '--runtime',
        'runc',
        '--cgroup-manager',
        'cgroupfs',
        '--events-backend',
        'file',
        'run',
        '--rm',
        '--tls-verify=false',
        '--network',
        'none',
        '--ulimit',
        'nofile=1024:1024',
        '--ulimit',
        'nproc=1024:1024',
        `${reg.host}/dst/bb:chunked`,
        'cat',
        '/etc/group',
      ],
      { timeoutMs: 120_000 },
    );
    expect(podman.code, podman.stderr).toBe(0);
    expect(podman.stdout).toBe('root:x:0:\nnobody:x:65534:\n');
  });

  it('a zstd:chunked source copied with zstd:chunked is copied as it is; converted to gzip it loses the annotations', async () => {
    const same = await stevedore(['copy', '--dest-compress-format', 'zstd:chunked', `docker://${reg.host}/dst/bb:chunked`, `docker://${reg.host}/dst/bb:same`]);
    expect(same.code, same.stderr).toBe(0);
    const digest = async (tag: string) =>
      (await fetch(`${reg.url}/v2/dst/bb/manifests/${tag}`, { method: 'HEAD', headers: { accept: MediaType.OciManifest } })).headers.get(
        'docker-content-digest',
      );
    expect(await digest('same')).toBe(await digest('chunked'));
    const gz = await stevedore(['copy', '-q', '--dest-compress-format', 'gzip', `docker://${reg.host}/dst/bb:chunked`, `docker://${reg.host}/dst/bb:gz`]);
    expect(gz.code, gz.stderr).toBe(0);
    const m = (await (await fetch(`${reg.url}/v2/dst/bb/manifests/gz`, { headers: { accept: MediaType.OciManifest } })).json()) as {
      layers: { mediaType: string; digest: string; annotations?: Record<string, string> }[];
    };
    expect(m.layers[0]!.mediaType).toBe(MediaType.OciLayerGzip);
    expect(m.layers[0]!.annotations?.[ZSTD_CHUNKED_MANIFEST_POSITION]).toBeUndefined();
    // The whole tar, not its first frame (Node's zstd reader alone stops there).
    const gzBlob = Buffer.from(await (await fetch(`${reg.url}/v2/dst/bb/blobs/${m.layers[0]!.digest}`)).arrayBuffer());
    expect(sha(gunzipSync(gzBlob))).toBe(image.diffIds[0]);
  });
});
