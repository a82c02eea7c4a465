// Seeds the controller benchmark's registry (run by hack/bench/controller.sh):
//   seed.ts REGISTRY REPOS TAGS
// For r in 0..REPOS-1 and t in 1..TAGS: one small random image, pushed as bench/src<r>:t<t> and,
// identical, as bench/dst<r>:t<t>. Every ImageMirror then finds its destination up to date
// ("unchanged images"): a reconcile does the HEADs of a steady-state sync and copies nothing.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyReference } from '../../../src/copy/copy.js';
import { parseImageName } from '../../../src/transports/index.js';
import { makeRandomImage } from '../../lib/harness/images.js';

const [registry, reposArg, tagsArg] = process.argv.slice(2);
const repos = Number(reposArg);
const tags = Number(tagsArg);
if (!registry || !Number.isInteger(repos) || repos < 1 || !Number.isInteger(tags) || tags < 1) {
  console.error('usage: seed.ts REGISTRY REPOS TAGS (REPOS and TAGS positive integers)');
  process.exit(2);
}
const dir = await mkdtemp(join(tmpdir(), 'stevedore-bench-ctl-seed-'));
try {
  for (let r = 0; r < repos; r++) {
    for (let t = 1; t <= tags; t++) {
      const img = await makeRandomImage({ layers: 1, layerSize: 64 * 1024, seed: `ctl-${r}-${t}`, layoutDir: join(dir, `r${r}`), ref: `t${t}` });
      for (const side of ['src', 'dst']) {
        await copyReference(parseImageName(img.ociRef), parseImageName(`docker://${registry}/bench/${side}${r}:t${t}`));
      }
    }
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
