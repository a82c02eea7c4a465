/**
 * RUN without overlay: where the runtime copies the snapshot instead of mounting an overlay, the layer
 * is a tree diff of the copy against the snapshot. Built through the engine API with both ways, the
 * corpus's RUN cases (new files, a USER switch, deletions of files and directories, a directory
 * replaced) give the same filesystem.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage } from '../../src/build/index.js';
import { ImageStore } from '../../src/runtime/store/index.js';
import { REPO_ROOT } from '../cli/stevedore.js';
import { makeBusyboxImage } from '../../hack/lib/harness/images.js';
import { diffFs, flatten } from './corpus/harness.js';

let dir: string;
let base: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stevedore-build-treediff-'));
  base = (await makeBusyboxImage(join(dir, 'busybox'), 'bb')).ociRef;
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('RUN layers by tree diff', () => {
  for (const name of ['10-run-basic', '12-run-delete']) {
    it(`${name}: a copied rootfs gives the same image filesystem as the overlay`, async () => {
      const out: Record<string, string> = {};
      for (const mode of ['overlay', 'copy'] as const) {
        const store = await ImageStore.open(join(dir, `store-${name}-${mode}`));
        const result = await buildImage({
          store,
          context: join(REPO_ROOT, 'test', 'build', 'corpus', name),
          buildArgs: { BASE: base },
          rootfsMode: mode,
          timestamp: 1700000000,
          tags: [`oci:${join(dir, `out-${name}`)}:${mode}`],
        });
        out[mode] = result.image.digest;
      }
      const a = await flatten(join(dir, `out-${name}`), 'overlay');
      const b = await flatten(join(dir, `out-${name}`), 'copy');
      expect(diffFs(a, b)).toEqual([]);
      expect(a.size).toBeGreaterThan(10);
    }, 120_000);
  }
});
