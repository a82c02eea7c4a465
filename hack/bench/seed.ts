// Seeds the copy benchmark's source registry through the engine (run by hack/bench/copy.sh):
//   seed.ts big REGISTRY REPO:TAG LAYERS LAYER_MIB   an image of random, incompressible layers
//   seed.ts tags REGISTRY REPO COUNT SEED            COUNT small images tagged t1..tCOUNT
//   seed.ts runnable REGISTRY REPO:TAG LAYERS LAYER_MIB  busybox-static plus LAYERS random layers (runs `true`)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyReference } from '../../src/copy/copy.js';
import { parseImageName } from '../../src/transports/index.js';
import { createReadStream } from 'node:fs';
import { OciLayout } from '../../src/oci/layout.js';
import { encodeManifest } from '../../src/oci/manifest.js';
import { MediaType } from '../../src/oci/mediatype.js';
import { makeBusyboxImage, makeRandomImage } from '../lib/harness/images.js';

const [mode, registry, target, a, b] = process.argv.slice(2);
const dir = await mkdtemp(join(tmpdir(), 'stevedore-bench-seed-'));
try {
  if (mode === 'big') {
    const img = await makeRandomImage({ layers: Number(a), layerSize: Number(b) * 1024 * 1024, layoutDir: dir, ref: 'big' });
    await copyReference(parseImageName(img.ociRef), parseImageName(`docker://${registry}/${target}`));
  } else if (mode === 'tags') {
    const count = Number(a);
    for (let i = 1; i <= count; i++) {
      const img = await makeRandomImage({ layers: 1, layerSize: 128 * 1024, seed: `${b}-${i}`, layoutDir: dir, ref: `t${i}` });
      await copyReference(parseImageName(img.ociRef), parseImageName(`docker://${registry}/${target}:t${i}`));
    }
  } else if (mode === 'runnable') {
    const base = await makeBusyboxImage(join(dir, 'base'), 'base');
    if (Number(a) === 0) {
      await copyReference(parseImageName(base.ociRef), parseImageName(`docker://${registry}/${target}`));
    } else {
      const fat = await makeRandomImage({
        layers: Number(a),
        layerSize: Number(b) * 1024 * 1024,
        layoutDir: join(dir, 'fat'),
        ref: 'fat',
        platform: base.platform,
      });
      // One image: the busybox layer first, then the random ones; blobs are linked into one layout.
      const layout = await OciLayout.open(join(dir, 'fat'));
      for (const d of [base.configDescriptor, ...base.layers]) {
        await layout.writeBlob(createReadStream(join(dir, 'base', 'blobs', 'sha256', d.digest.slice(7))), d);
      }
      const config = { ...base.config, rootfs: { type: 'layers' as const, diff_ids: [...base.diffIds, ...fat.diffIds] } };
      const configBytes = Buffer.from(JSON.stringify(config));
      const configDigest = await layout.writeBlobBytes(configBytes);
      const raw = encodeManifest({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { mediaType: MediaType.OciConfig, digest: configDigest, size: configBytes.length },
        layers: [...base.layers, ...fat.layers],
      });
      await layout.writeBlobBytes(raw.bytes, raw.digest);
      await layout.setRef({ mediaType: raw.mediaType, digest: raw.digest, size: raw.bytes.length }, 'runnable');
      await copyReference(parseImageName(`oci:${join(dir, 'fat')}:runnable`), parseImageName(`docker://${registry}/${target}`));
    }
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
