/**
 * A pull that builds snapshots (what `stevedore run` does) unpacks each layer from its download
 * while the blob is written. These tests hold it to the same guarantees as a pull followed by an
 * unpack from the stored blobs: the same snapshots, every byte checked (a corrupted blob leaves
 * neither a blob nor a snapshot), hostile layers refused, and nothing half-made left behind.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestBytes, digestHex, type Digest } from '../../src/oci/digest.js';
import { OciLayout } from '../../src/oci/layout.js';
import { encodeManifest } from '../../src/oci/manifest.js';
import { MediaType } from '../../src/oci/mediatype.js';
import { hostPlatform } from '../../src/oci/platform.js';
import { ImageStore } from '../../src/runtime/store/index.js';
import { makeBusyboxImage, makeRandomImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { makeTar, type TarEntrySpec } from './helpers.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const HOOKS = join(HERE, 'ts-hooks.mjs');
const STORE = resolve(HERE, '..', '..', 'src', 'runtime', 'store', 'index.ts');

let dir: string;
let image: FixtureImage;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stevedore-pull-staged-'));
  image = await makeRandomImage({
    layers: 3,
    layerSize: 6 * 1024 * 1024,
    seed: 'pull-staged',
    layoutDir: join(dir, 'layout'),
    ref: 'img',
    platform: hostPlatform(),
  });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** path -> type, mode, owner, size and content hash of everything below `root`. */
async function fingerprint(root: string, prefix = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(join(root, prefix))).sort()) {
    const rel = prefix ? `${prefix}/${name}` : name;
    const st = await stat(join(root, rel));
    let what = `${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.size} ${st.mtimeMs}`;
    if (st.isFile())
      what += ` ${createHash('sha256')
        .update(await readFile(join(root, rel)))
        .digest('hex')}`;
    out[rel] = what;
    if (st.isDirectory()) Object.assign(out, await fingerprint(root, rel));
  }
  return out;
}

async function snapshotNames(root: string): Promise<string[]> {
  return (await readdir(join(root, 'snapshots')).catch(() => [] as string[])).sort();
}

/** An image whose only layer is the given tar entries. */
async function imageOf(layoutDir: string, ref: string, entries: TarEntrySpec[]): Promise<string> {
  const layout = await OciLayout.open(layoutDir, { create: true });
  const tarBytes = await makeTar(entries);
  const gz = gzipSync(tarBytes);
  const layerDigest = await layout.writeBlobBytes(gz);
  const config = Buffer.from(
    JSON.stringify({ architecture: hostPlatform().architecture, os: 'linux', rootfs: { type: 'layers', diff_ids: [digestBytes(tarBytes)] } }),
  );
  const configDigest = await layout.writeBlobBytes(config);
  const raw = encodeManifest({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: configDigest, size: config.length },
    layers: [{ mediaType: MediaType.OciLayerGzip, digest: layerDigest, size: gz.length }],
  });
  await layout.writeBlobBytes(raw.bytes, raw.digest);
  await layout.setRef({ mediaType: raw.mediaType, digest: raw.digest, size: raw.bytes.length }, ref);
  return `oci:${layoutDir}:${ref}`;
}

describe('a pull that builds snapshots from the download', () => {
  it('makes the same snapshots as unpacking the stored blobs, stores verified blobs, and leaves no temp dir', async () => {
    const staged = await ImageStore.open(join(dir, 'staged'));
    const img = await staged.pull(image.ociRef, { snapshots: {} });
    for (const c of img.chainIds) expect(await staged.readSnapshotMeta(c)).toMatchObject({ chainId: c });
    expect(await staged.staleTemps()).toEqual([]);
    // Every stored blob reads back whole against its digest.
    for (const l of img.manifest.layers) {
      const s = await staged.layout.openBlob(l);
      for await (const _ of s) {
        // read to the end: a mismatch would throw
      }
    }

    const plain = await ImageStore.open(join(dir, 'plain'));
    const img2 = await plain.pull(image.ociRef);
    expect(await snapshotNames(plain.root)).toEqual([]);
    const top = await plain.snapshot(img2);
    expect(await fingerprint(join(staged.snapshotDir(img.chainIds[2]!), 'rootfs'))).toEqual(await fingerprint(top));
    expect(Object.keys(await fingerprint(top))).toEqual(['layer-0.bin', 'layer-1.bin', 'layer-2.bin']);
  });

  it('keeps busybox runnable content (symlinks, modes, directories) identical to the unpack from blobs', async () => {
    const bb = await makeBusyboxImage(join(dir, 'bb'), 'bb');
    const a = await ImageStore.open(join(dir, 'bb-staged'));
    const b = await ImageStore.open(join(dir, 'bb-plain'));
    const ia = await a.pull(bb.ociRef, { snapshots: {} });
    const ib = await b.pull(bb.ociRef);
    const fa = await fingerprint(join(a.snapshotDir(ia.chainIds[0]!), 'rootfs'));
    expect(fa['bin/busybox']).toMatch(/^100755 0:0/);
    expect(fa).toEqual(await fingerprint(await b.snapshot(ib)));
  });

  it('a blob whose bytes do not match its digest leaves no blob, no snapshot, no temp dir and no image', async () => {
    const bad = join(dir, 'bad-layout');
    const img = await makeRandomImage({ layers: 2, layerSize: 2 * 1024 * 1024, seed: 'corrupt', layoutDir: bad, ref: 'img', platform: hostPlatform() });
    const victim = img.layers[1]!;
    // Same size, one byte changed in the middle of the compressed stream.
    const fh = await open(join(bad, 'blobs', 'sha256', digestHex(victim.digest)), 'r+');
    const one = Buffer.alloc(1);
    await fh.read(one, 0, 1, 1024 * 1024);
    one[0] = one[0]! ^ 0xff;
    await fh.write(one, 0, 1, 1024 * 1024);
    await fh.close();

    const store = await ImageStore.open(join(dir, 'corrupt-store'));
    await expect(store.pull(img.ociRef, { snapshots: {} })).rejects.toThrow(/digest|sha256/i);
    expect(await store.layout.hasBlob(victim.digest)).toBe(false);
    expect((await snapshotNames(store.root)).filter((n) => n !== digestHex(img.diffIds[0]!))).toEqual([]);
    expect(await store.staleTemps()).toEqual([]);
    await expect(store.get(img.ociRef)).rejects.toThrow();
  });

  it('a hostile layer is refused with its reason; no snapshot or temp dir is left and nothing lands outside', async () => {
    const outside = join(dir, `outside-${Date.now()}`);
    const ref = await imageOf(join(dir, 'hostile'), 'h', [
      { name: 'ok', content: 'fine' },
      { name: `../../../../../../../..${outside}`, content: 'pwned' },
    ]);
    const store = await ImageStore.open(join(dir, 'hostile-store'));
    const err = await store.pull(ref, { snapshots: {} }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'UNSAFE_LAYER_ENTRY', message: expect.stringMatching(/path escapes the root/) });
    expect(await snapshotNames(store.root)).toEqual([]);
    await expect(stat(outside)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a diffID that differs from the config is refused before any snapshot exists', async () => {
    const layoutDir = join(dir, 'liar');
    const ref = await imageOf(layoutDir, 'l', [{ name: 'a', content: 'A' }]);
    // Rewrite the config to claim another diffID (and the manifest to name that config).
    const layout = await OciLayout.open(layoutDir);
    const desc = await layout.resolve('l');
    const manifest = JSON.parse((await layout.readBlob(desc.digest)).toString());
    const config = Buffer.from(
      JSON.stringify({ architecture: hostPlatform().architecture, os: 'linux', rootfs: { type: 'layers', diff_ids: [digestBytes('something else')] } }),
    );
    manifest.config = { mediaType: MediaType.OciConfig, digest: await layout.writeBlobBytes(config), size: config.length };
    const raw = encodeManifest(manifest);
    await layout.writeBlobBytes(raw.bytes, raw.digest);
    await layout.setRef({ mediaType: raw.mediaType, digest: raw.digest as Digest, size: raw.bytes.length }, 'l');

    const store = await ImageStore.open(join(dir, 'liar-store'));
    await expect(store.pull(ref, { snapshots: {} })).rejects.toMatchObject({ code: 'DIFFID_MISMATCH' });
    expect(await snapshotNames(store.root)).toEqual([]);
  });

  it('an aborted pull rejects promptly and removes its staged layers', async () => {
    const img = await makeRandomImage({
      layers: 3,
      layerSize: 24 * 1024 * 1024,
      seed: 'pull-abort',
      layoutDir: join(dir, 'abort-layout'),
      ref: 'a',
      platform: hostPlatform(),
    });
    const store = await ImageStore.open(join(dir, 'aborted'));
    const ac = new AbortController();
    const started = Date.now();
    const pending = store.pull(img.ociRef, { snapshots: {}, signal: ac.signal });
    // Abort once staging is under way.
    for (;;) {
      if ((await snapshotNames(store.root)).some((n) => n.startsWith('.tmp-'))) break;
      if (Date.now() - started > 30_000) throw new Error('staging never started');
      await new Promise((r) => setTimeout(r, 2));
    }
    ac.abort();
    await expect(pending).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(await store.staleTemps()).toEqual([]);
    expect((await snapshotNames(store.root)).filter((n) => !n.startsWith('.'))).toEqual([]);
  });

  it('a SIGKILLed pull leaves only temp dirs, never a snapshot a later run would use; the next pull finishes the job', async () => {
    const big = await makeRandomImage({
      layers: 3,
      layerSize: 48 * 1024 * 1024,
      seed: 'pull-kill',
      layoutDir: join(dir, 'big'),
      ref: 'big',
      platform: hostPlatform(),
    });
    const root = join(dir, 'killed');
    const code = `const { ImageStore } = await import(${JSON.stringify(STORE)}); const s = await ImageStore.open(process.argv[1]); await s.pull(process.argv[2], { snapshots: {} });`;
    const child = spawn(process.execPath, ['--import', HOOKS, '--input-type=module', '-e', code, root, big.ociRef], { stdio: 'ignore' });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    // Kill it while layers are being staged (a temp dir exists, the top snapshot does not).
    const deadline = Date.now() + 60_000;
    for (;;) {
      const names = await snapshotNames(root);
      if (names.some((n) => n.startsWith('.tmp-'))) break;
      if (Date.now() > deadline) throw new Error('the pull never started staging');
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill('SIGKILL');
    await exited;

    const store = await ImageStore.open(root);
    const names = await snapshotNames(root);
    const chains = (await import('../../src/runtime/store/chainid.js')).chainIds(big.diffIds);
    // Whatever snapshot exists is complete (its metadata is written before the rename).
    for (const c of chains.filter((c) => names.includes(digestHex(c)))) expect(await store.readSnapshotMeta(c)).toMatchObject({ chainId: c });
    expect(await store.staleTemps()).not.toEqual([]);

    const img = await store.pull(big.ociRef, { snapshots: {} });
    const top = join(store.snapshotDir(img.chainIds[2]!), 'rootfs');
    expect((await readdir(top)).sort()).toEqual(['layer-0.bin', 'layer-1.bin', 'layer-2.bin']);
    // The content is the image's: each file hashes to what the fixture wrote.
    const want = await fingerprint(
      await (await ImageStore.open(join(dir, 'killed-check')))
        .pull(big.ociRef)
        .then((i) => ImageStore.open(join(dir, 'killed-check')).then((s) => s.snapshot(i))),
    );
    expect(await fingerprint(top)).toEqual(want);
    await store.pruneTemps();
    expect(await store.staleTemps()).toEqual([]);
  });
});
