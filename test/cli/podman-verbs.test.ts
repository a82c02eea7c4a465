/**
 * `stevedore pull|tag|push|save|load` beside podman's on the same inputs, offline: a loopback
 * registry and archives; podman on a private vfs storage so nothing of the machine's is touched.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBusyboxImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { runCommand } from '../../hack/lib/harness/procs.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { skopeo } from '../harness/skopeo.js';
import { stevedore } from './stevedore.js';

let dir: string;
let reg: TestRegistry;
let image: FixtureImage;
let ref: string;

const ours = (args: string[]) => stevedore([...args.slice(0, 1), '--root', join(dir, 'store'), ...args.slice(1)]);
const podman = (args: string[]) =>
  runCommand(
    'podman',
    ['--root', join(dir, 'podman-root'), '--runroot', join(dir, 'podman-run'), '--storage-driver', 'vfs', '--events-backend=file', ...args],
    { timeoutMs: 120_000 },
  );

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stevedore-podman-verbs-'));
  reg = await startRegistry({ name: 'podman-verbs' });
  image = await makeBusyboxImage(join(dir, 'layout'), 'bb');
  ref = `${reg.host}/verbs/bb:1`;
  const pushed = await skopeo(['copy', '--dest-tls-verify=false', image.ociRef, `docker://${ref}`]);
  expect(pushed.code, pushed.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('podman-compatible image verbs', () => {
  it('pull prints the image ID, the same as podman pull', async () => {
    const [a, b] = [await ours(['pull', ref]), await podman(['pull', '--tls-verify=false', ref])];
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(a.stdout).toMatch(/^[0-9a-f]{64}\n$/);
    expect(a.stdout).toBe(b.stdout.split('\n').filter(Boolean).pop() + '\n');
  }, 120_000);

  it('tag adds a name (prints nothing) and push sends it to the registry unchanged', async () => {
    const t = await ours(['tag', ref, `${reg.host}/verbs/bb:2`]);
    expect([t.code, t.stdout]).toEqual([0, '']);
    const p = await ours(['push', `${reg.host}/verbs/bb:2`]);
    expect([p.code, p.stdout], p.stderr).toEqual([0, '']);
    const [one, two] = await Promise.all(
      [1, 2].map((n) => skopeo(['inspect', '--tls-verify=false', '--format', '{{.Digest}}', `docker://${reg.host}/verbs/bb:${n}`])),
    );
    expect(two!.stdout).toBe(one!.stdout);
    expect((await ours(['tag', 'no/such:image', 'x:1'])).code).toBe(125);
  }, 120_000);

  it('save writes an archive podman load reads, under the same name and ID', async () => {
    const file = join(dir, 'ours.tar');
    const s = await ours(['save', '-o', file, ref]);
    expect([s.code, s.stdout], s.stderr).toEqual([0, '']);
    const l = await podman(['load', '-i', file]);
    expect(l.code, l.stderr).toBe(0);
    expect(l.stdout).toContain(`Loaded image: ${ref}`);
    const id = await podman(['images', '--no-trunc', '--format', '{{.ID}}', ref]);
    const ourId = (await ours(['pull', ref])).stdout.trim();
    expect(id.stdout.trim().replace(/^sha256:/, '')).toBe(ourId);
  }, 120_000);

  it('load reads an archive podman save wrote and prints "Loaded image: NAME" as podman does', async () => {
    const file = join(dir, 'podman.tar');
    const s = await podman(['save', '-o', file, ref]);
    expect(s.code, s.stderr).toBe(0);
    const l = await ours(['load', '-i', file]);
    expect(l.code, l.stderr).toBe(0);
    const theirs = await podman(['load', '-i', file]);
    expect(l.stdout).toBe(
      theirs.stdout
        .split('\n')
        .filter((x) => x.startsWith('Loaded image'))
        .join('\n') + '\n',
    );
    expect((await ours(['images'])).stdout).toContain(`${reg.host}/verbs/bb`);
  }, 120_000);
});
