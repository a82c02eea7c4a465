/**
 * The working-container engine used in-process: verbs on one container from several processes at
 * once keep every change (the lock), relative copy sources are read from `cwd`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyIntoWorkingContainer, createWorkingContainer, removeWorkingContainers, runInWorkingContainer } from '../../src/build/working/verbs.js';
import { WorkingContainers } from '../../src/build/working/records.js';
import { ImageStore } from '../../src/runtime/store/index.js';
import { makeBusyboxImage } from '../../hack/lib/harness/images.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';

const tmp = new TempDirs();
let store: ImageStore;
let base: string;
let src: string;

beforeAll(async () => {
  const work = await tmp.make('working');
  store = await ImageStore.open(join(work, 'store'));
  base = (await makeBusyboxImage(join(work, 'layout'), 'bb')).ociRef;
  src = join(work, 'src');
  await mkdir(src);
  for (let i = 0; i < 4; i++) await writeFile(join(src, `f${i}`), `${i}\n`);
}, 60_000);
afterAll(() => tmp.cleanup());

describe('working containers', () => {
  it('keeps every change when verbs on one container overlap', async () => {
    const c = await createWorkingContainer({ store }, base);
    // Relative sources, read from cwd, all at once.
    await Promise.all([0, 1, 2, 3].map((i) => copyIntoWorkingContainer({ store }, c.name, 'copy', [`f${i}`], `/in/f${i}`, { cwd: src })));
    const after = await new WorkingContainers(store).find(c.name);
    expect(after.state.layers).toHaveLength(c.state.layers.length + 4);
    let out = '';
    await runInWorkingContainer({ store, output: (b) => void (out += b.toString()) }, c.id.slice(0, 12), ['cat', '/in/f0', '/in/f1', '/in/f2', '/in/f3']);
    expect(out).toBe('0\n1\n2\n3\n');
    expect((await removeWorkingContainers({ store }, [c.name])).map((r) => r.id)).toEqual([c.id]);
    await expect(new WorkingContainers(store).find(c.name)).rejects.toThrow(/no working container/);
  }, 120_000);

  it('refuses a copy source that does not exist, naming it, and changes nothing', async () => {
    const c = await createWorkingContainer({ store }, base);
    await expect(copyIntoWorkingContainer({ store }, c.name, 'copy', ['missing-file'], '/x', { cwd: src })).rejects.toThrow(/missing-file/);
    expect((await new WorkingContainers(store).find(c.name)).state.layers).toHaveLength(c.state.layers.length);
    await removeWorkingContainers({ store }, 'all');
  }, 60_000);
});
