/**
 * Two stages that produce the same layer in parallel (each `COPY big.bin` onto the same base) both
 * adopt the same blob: the second rename finds its file already moved into the store, and that is
 * success, not ENOENT. Repeated, as the race only shows some of the time.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage } from '../../src/build/index.js';
import { ImageStore } from '../../src/runtime/store/index.js';
import { makeBusyboxImage } from '../../hack/lib/harness/images.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';

const tmp = new TempDirs();
let work: string;
let base: string;

beforeAll(async () => {
  work = await tmp.make('build-race');
  base = (await makeBusyboxImage(join(work, 'busybox'), 'bb')).ociRef;
}, 60_000);
afterAll(() => tmp.cleanup());

describe('parallel stages writing the same layer', () => {
  it('an already-present blob is success: 10 builds of two stages each COPY big.bin', async () => {
    const ctx = join(work, 'ctx');
    await mkdir(ctx);
    await writeFile(join(ctx, 'big.bin'), randomBytes(4 << 20));
    await writeFile(
      join(ctx, 'Containerfile'),
      [
        `FROM ${base} AS one`,
        'COPY big.bin /big.bin',
        `FROM ${base} AS two`,
        'COPY big.bin /big.bin',
        'FROM scratch',
        'COPY --from=one /big.bin /a',
        'COPY --from=two /big.bin /b',
        '',
      ].join('\n'),
    );
    const digests = new Set<string>();
    for (let i = 0; i < 10; i++) {
      // A fresh store each time: no blob is there before the two stages race for it.
      const store = await ImageStore.open(join(work, `store-${i}`));
      const r = await buildImage({ store, context: ctx, noCache: true, timestamp: 1700000000 });
      digests.add(r.image.digest);
    }
    expect(digests.size).toBe(1);
  }, 300_000);
});
