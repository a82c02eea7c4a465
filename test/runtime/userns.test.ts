/**
 * Containers in a user namespace (Podman's --uidmap): container root is an unprivileged host uid.
 * The snapshot is unpacked with ids shifted through the map (kept apart from the unshifted one),
 * and a file the container's root creates belongs to the mapped uid on the host.
 */
import { chmod, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runContainer } from '../../src/runtime/container.js';
import { ImageStore } from '../../src/runtime/store/index.js';
import { makeBusyboxImage, type FixtureImage } from '../../hack/lib/harness/images.js';

const HOST_BASE = 300000;
const map = [{ containerID: 0, hostID: HOST_BASE, size: 65536 }];

let dir: string;
let image: FixtureImage;
let store: ImageStore;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stevedore-userns-'));
  // The mapped root reaches its rootfs through this directory as "other".
  await chmod(dir, 0o711);
  image = await makeBusyboxImage(join(dir, 'layout'), 'bb');
  store = await ImageStore.open(join(dir, 'store'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('user namespaces', () => {
  for (const mode of ['overlay', 'copy'] as const) {
    it(`container root is host uid ${HOST_BASE}: files it creates are owned by it (${mode} rootfs)`, async () => {
      let out = '';
      const r = await runContainer(store, {
        image: image.ociRef,
        args: ['sh', '-c', 'id -u; cat /proc/self/uid_map; echo x > /made-by-root; ls -ln /bin/busybox'],
        idMappings: { uidMappings: map, gidMappings: map },
        rootfsMode: mode,
        stdout: (c) => (out += c.toString()),
      });
      expect(r.exitCode).toBe(0);
      const [uid, uidMap, ls] = out.trim().split('\n');
      expect(uid).toBe('0');
      expect(uidMap!.trim().split(/\s+/)).toEqual(['0', String(HOST_BASE), '65536']);
      // Inside, the image's files still belong to root.
      expect(ls).toMatch(/^-rwxr-xr-x\s+1 0\s+0 /);
      const made = await stat(join(r.bundle, mode === 'overlay' ? 'upper' : 'rootfs', 'made-by-root'));
      expect([made.uid, made.gid]).toEqual([HOST_BASE, HOST_BASE]);
      await rm(r.bundle, { recursive: true, force: true });
    });
  }

  it('keeps shifted snapshots apart from unshifted ones', async () => {
    const img = await store.get(image.ociRef);
    const shifted = await store.snapshot(img, { idMap: { uidMappings: map, gidMappings: map } });
    const plain = await store.snapshot(img);
    expect(shifted).not.toBe(plain);
    expect((await stat(join(shifted, 'bin', 'busybox'))).uid).toBe(HOST_BASE);
    expect((await stat(join(plain, 'bin', 'busybox'))).uid).toBe(0);
    expect((await readdir(join(store.root, 'snapshots'))).filter((n) => !n.startsWith('.'))).toHaveLength(2);
  });
});
