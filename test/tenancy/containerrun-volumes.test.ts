/**
 * A run's volumes on the real agent with runc: its Secret is on a tmpfs (never on the node's disk),
 * 0400 and owned by the run's user, and gone when the run ends; a disk emptyDir that outgrows its
 * sizeLimit gets the run evicted; a Memory one is capped by its tmpfs.
 */
import { readFile, stat } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runVolumesDir } from '../../src/agent/volumes.js';
import { waitFor } from '../controllers/helpers.js';
import { ContainerRunRig } from './containerrun-rig.js';

const NS = 'team-v';
const rig = new ContainerRunRig({ tenants: [NS], extraAgentArgs: ['--disk-check-interval', '300ms'] });

beforeAll(async () => {
  await rig.start();
  await rig.pullSecret(NS);
  await rig.tenant(NS).client.create(`/api/v1/namespaces/${NS}/secrets`, { metadata: { name: 'app' }, stringData: { token: 's3cret' } });
}, 180_000);
afterAll(() => rig.stop(), 60_000);

describe('volumes of a run', () => {
  it('a Secret volume is a tmpfs, its file 0400 owned by the run user, and removed from the node when the run ends', async () => {
    const run = await rig.createRun(NS, 'secret', {
      user: '1000',
      command: ['sh', '-c', 'grep " /secret " /proc/mounts; ls -ln /secret/; cat /secret/token'],
      imagePullSecrets: [{ name: 'pull' }],
      volumes: [{ name: 'sec', mountPath: '/secret', secret: { secretName: 'app' } }],
    });
    const done = await rig.waitPhase(NS, 'secret', ['Succeeded', 'Failed']);
    expect(done.status, await rig.agentLogTail()).toMatchObject({ phase: 'Succeeded' });
    const tail = done.status!.logTail!;
    expect(tail).toMatch(/^tmpfs \/secret tmpfs ro,nosuid,nodev,noexec/m);
    expect(tail).toMatch(/^-r-------- +1 1000 +1000 +6 .* token$/m);
    expect(tail).toContain('s3cret');
    // Released right after the final status is written.
    const dir = runVolumesDir(rig.storeRoot, run.metadata.uid!);
    await waitFor(
      'the volumes released',
      () =>
        stat(dir).then(
          () => 'present',
          (e: NodeJS.ErrnoException) => e.code,
        ),
      (s) => s === 'ENOENT',
      10_000,
    );
    expect(await readFile('/proc/self/mountinfo', 'utf8')).not.toContain(dir);
  });

  it('a disk emptyDir over its sizeLimit gets the run evicted (Failed/Evicted, not retried); a Memory one stops at its size', async () => {
    await rig.createRun(NS, 'filler', {
      command: ['sh', '-c', 'i=0; while [ $i -lt 64 ]; do cat /bin/busybox >> /scratch/fill; i=$((i+1)); done; echo filled; busybox sleep 60'],
      restartPolicy: 'OnFailure',
      imagePullSecrets: [{ name: 'pull' }],
      volumes: [{ name: 'scratch', mountPath: '/scratch', emptyDir: { sizeLimit: '1Mi' } }],
    });
    const evicted = await rig.waitPhase(NS, 'filler', ['Failed', 'Succeeded'], 60_000);
    expect(evicted.status).toMatchObject({ phase: 'Failed', reason: 'Evicted' });
    expect(evicted.status?.message).toMatch(/emptyDir volume "scratch" holds \d+ bytes, over its sizeLimit 1Mi \(1048576 bytes\)/);
    expect(evicted.status?.restartCount).toBeUndefined();

    await rig.createRun(NS, 'memory', {
      command: ['sh', '-c', 'cat /bin/busybox /bin/busybox /bin/busybox > /mem/fill; echo "exit $?"'],
      imagePullSecrets: [{ name: 'pull' }],
      volumes: [{ name: 'mem', mountPath: '/mem', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } }],
    });
    const capped = await rig.waitPhase(NS, 'memory', ['Failed', 'Succeeded']);
    expect(capped.status?.logTail).toMatch(/No space left on device/);
    expect(capped.status?.logTail).toContain('exit 1');
  });
});
