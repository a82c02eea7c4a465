/**
 * A pull-and-unpack killed with SIGKILL half way (no cleanup code runs) must leave nothing that
 * a later snapshot or run would use: the half-written snapshot sits in a `.tmp-*` dir that is
 * never read, and the next call rebuilds the snapshot from the verified blobs.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestHex } from '../../src/oci/digest.js';
import { ImageStore } from '../../src/runtime/store/index.js';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { digestBytes, type Digest } from '../../src/oci/digest.js';
import { OciLayout } from '../../src/oci/layout.js';
import { encodeManifest } from '../../src/oci/manifest.js';
import { MediaType } from '../../src/oci/mediatype.js';
import { hostPlatform } from '../../src/oci/platform.js';
import { makeTar } from './helpers.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const HOOKS = join(HERE, 'ts-hooks.mjs');
const STORE = resolve(HERE, '..', '..', 'src', 'runtime', 'store', 'index.ts');

let dir: string;
let image: { ociRef: string; diffIds: Digest[] };

/**
 * Three random layers, the first small: layers are staged in parallel and applied in order, so a
 * small first layer makes its snapshot exist well before the big ones are done (the moment the
 * test kills the process).
 */
async function makeImage(layoutDir: string): Promise<{ ociRef: string; diffIds: Digest[] }> {
  const layout = await OciLayout.open(layoutDir, { create: true });
  const layers = [];
  const diffIds: Digest[] = [];
  for (const [i, size] of [1, 48, 48].entries()) {
    const tarBytes = await makeTar([{ name: `layer-${i}.bin`, content: randomBytes(size * 1024 * 1024) }]);
    const gz = gzipSync(tarBytes, { level: 1 });
    layers.push({ mediaType: MediaType.OciLayerGzip, digest: await layout.writeBlobBytes(gz), size: gz.length });
    diffIds.push(digestBytes(tarBytes));
  }
  const config = Buffer.from(JSON.stringify({ architecture: hostPlatform().architecture, os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds } }));
  const raw = encodeManifest({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: await layout.writeBlobBytes(config), size: config.length },
    layers,
  });
  await layout.writeBlobBytes(raw.bytes, raw.digest);
  await layout.setRef({ mediaType: raw.mediaType, digest: raw.digest, size: raw.bytes.length }, 'big');
  return { ociRef: `oci:${layoutDir}:big`, diffIds };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stevedore-interrupt-'));
  image = await makeImage(join(dir, 'layout'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('interrupted unpack', () => {
  it('a SIGKILLed unpack leaves only a temp dir, never a snapshot; the next run rebuilds and verifies it', async () => {
    const root = join(dir, 'store');
    const code = `const { ImageStore } = await import(${JSON.stringify(STORE)}); const s = await ImageStore.open(process.argv[1]); const img = await s.pull(process.argv[2]); await s.snapshot(img);`;
    const child = spawn(process.execPath, ['--import', HOOKS, '--input-type=module', '-e', code, root, image.ociRef], { stdio: 'ignore' });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    // Kill it once the second layer's unpack has started (the first snapshot is complete by then).
    const deadline = Date.now() + 60_000;
    for (;;) {
      const names = await readdir(join(root, 'snapshots')).catch(() => [] as string[]);
      if (names.includes(digestHex(image.diffIds[0]!)) && names.some((n) => n.startsWith('.tmp-'))) break;
      if (Date.now() > deadline) throw new Error('unpack never reached the second layer');
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill('SIGKILL');
    await exited;

    const store = await ImageStore.open(root);
    const img = await store.get(image.ociRef);
    const names = await readdir(join(root, 'snapshots'));
    expect(names).toContain(digestHex(img.chainIds[0]!));
    // Killed during layer 2 (or, at worst, just after it completed): the top snapshot is absent,
    // and every snapshot present is a complete one (its metadata is written before the rename).
    expect(names).not.toContain(digestHex(img.chainIds[2]!));
    for (const c of img.chainIds.filter((c) => names.includes(digestHex(c)))) expect(await store.readSnapshotMeta(c)).toMatchObject({ chainId: c });
    const stale = await store.staleTemps();
    expect(stale.length).toBeGreaterThanOrEqual(1);

    // The next call builds the missing snapshots (from the complete first one) and checks diffIDs.
    const top = await store.snapshot(img);
    expect(top).toBe(join(store.snapshotDir(img.chainIds[2]!), 'rootfs'));
    expect((await readdir(top)).sort()).toEqual(['layer-0.bin', 'layer-1.bin', 'layer-2.bin']);
    expect(await store.pruneTemps()).toEqual(stale);
    expect(await store.staleTemps()).toEqual([]);
  });
});
