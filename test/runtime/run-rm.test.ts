/**
 * `run --rm`: the container's overlay is mounted `volatile` (as Podman mounts --rm containers), so
 * unmounting it does not sync the whole filesystem under the store; a kept container's overlay is
 * a plain one. Either way nothing stays mounted, and --rm leaves nothing of the container behind.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runContainer, type RunResult } from '../../src/runtime/container.js';
import { ImageStore } from '../../src/runtime/store/index.js';
import { makeBusyboxImage, type FixtureImage } from '../../hack/lib/harness/images.js';

let dir: string;
let image: FixtureImage;
let store: ImageStore;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stevedore-run-rm-'));
  image = await makeBusyboxImage(join(dir, 'layout'), 'bb');
  store = await ImageStore.open(join(dir, 'store'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The container's own view of its root mount: the mountinfo line whose mount point is `/`. */
async function rootMountLine(remove: boolean): Promise<{ line: string; result: RunResult }> {
  let stdout = '';
  const result = await runContainer(store, {
    image: image.ociRef,
    args: ['busybox', 'cat', '/proc/self/mountinfo'],
    remove,
    stdout: (c) => (stdout += c.toString()),
  });
  expect(result.exitCode).toBe(0);
  const line = stdout.split('\n').find((l) => l.split(' ')[4] === '/');
  expect(line, stdout).toBeDefined();
  return { line: line!, result };
}

async function storeMounts(): Promise<string[]> {
  return (await readFile('/proc/self/mounts', 'utf8')).split('\n').filter((l) => l.includes(join(dir, 'store')));
}

describe('the rootfs overlay of a container', () => {
  it('is volatile with --rm, and the container leaves no directory and no mount', async () => {
    const { line, result } = await rootMountLine(true);
    expect(result.rootfsMode).toBe('overlay');
    expect(line).toMatch(/ overlay overlay .*volatile/);
    expect(await readdir(join(dir, 'store', 'containers'))).not.toContain(result.id);
    expect(await storeMounts()).toEqual([]);
  });

  it('is a plain (synced) overlay for a container that is kept, unmounted once it exits', async () => {
    const { line, result } = await rootMountLine(false);
    expect(line).toMatch(/ overlay overlay /);
    expect(line).not.toMatch(/volatile/);
    expect(await readdir(join(dir, 'store', 'containers'))).toContain(result.id);
    expect(await storeMounts()).toEqual([]);
  });
});
