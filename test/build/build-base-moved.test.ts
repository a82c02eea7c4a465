/**
 * A base image replaced at the same layout path and tag is used by the next build (with the default
 * --pull missing): the store's old copy, and every cached step above it, is not reused. Seen on a
 * node as a rebuild "from cache" with the old digest.
 */
import { join } from 'node:path';
import { mkdir, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupCli, cliTempDir, stevedore } from '../cli/stevedore.js';
import { makeBusyboxImage } from '../../hack/lib/harness/images.js';
import { fileText } from './corpus/harness.js';

let work: string;
let store: string;
let layout: string;

beforeAll(async () => {
  work = await cliTempDir('build-base-moved');
  store = join(work, 'store');
  layout = join(work, 'base');
  await makeBusyboxImage(layout, 'bb');
}, 60_000);
afterAll(() => cleanupCli());

async function ctx(name: string, containerfile: string): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'Containerfile'), containerfile);
  return dir;
}

describe('a base image that moved', () => {
  it('replaced at the same oci:DIR:TAG, the next build uses the new one, not the cache', async () => {
    const app = await ctx('app', `FROM oci:${layout}:bb\nRUN cat /version > /seen 2>/dev/null || echo none > /seen\n`);
    const out = join(work, 'out');
    const first = await stevedore(['build', '--root', store, '--timestamp', '1700000000', '-q', '-t', `oci:${out}:one`, app], { timeoutMs: 120_000 });
    expect(first.code, first.stderr).toBe(0);
    expect(await fileText(out, 'one', 'seen')).toBe('none\n');
    // A new base written over the old tag in the same layout (by a build in another store).
    const v2 = await ctx('v2', `FROM oci:${layout}:bb\nRUN echo v2 > /version\n`);
    const replaced = await stevedore(['build', '--root', join(work, 'other-store'), '-q', '-t', `oci:${layout}:bb`, v2], { timeoutMs: 120_000 });
    expect(replaced.code, replaced.stderr).toBe(0);
    const second = await stevedore(['build', '--root', store, '--timestamp', '1700000000', '-t', `oci:${out}:two`, app], { timeoutMs: 120_000 });
    expect(second.code, second.stderr).toBe(0);
    expect(await fileText(out, 'two', 'seen')).toBe('v2\n');
    expect(second.stdout).not.toBe(first.stdout);
    expect(second.stderr).toMatch(/0 from cache/);
    // Unchanged now: the next build is all from cache again.
    const third = await stevedore(['build', '--root', store, '--timestamp', '1700000000', '-t', `oci:${out}:three`, app], { timeoutMs: 120_000 });
    expect(third.code, third.stderr).toBe(0);
    expect(third.stdout).toBe(second.stdout);
    expect(third.stderr).toMatch(/[1-9]\d* from cache/);
  }, 240_000);
});
