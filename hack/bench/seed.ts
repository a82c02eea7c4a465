// Seeds the copy benchmark's source registry through the engine (run by hack/bench/copy.sh):
//   seed.ts big REGISTRY REPO:TAG LAYERS LAYER_MIB   an image of random, incompressible layers
//   seed.ts tags REGISTRY REPO COUNT SEED            COUNT small images tagged t1..tCOUNT
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyReference } from '../../src/copy/copy.js';
import { parseImageName } from '../../src/transports/index.js';
import { makeRandomImage } from '../../test/fixtures/images.js';

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
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
