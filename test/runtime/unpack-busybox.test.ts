import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unpackLayer } from '../../src/runtime/unpack/index.js';
import { makeSandbox, makeTar, sha256, streamOf, type Sandbox } from './helpers.js';

const run = promisify(execFile);
const BUSYBOX = '/usr/bin/busybox'; // Debian's busybox-static
const canRun = process.geteuid?.() === 0 && existsSync(BUSYBOX) && existsSync('/usr/sbin/chroot');

describe.runIf(canRun)('a busybox-static layer', () => {
  let sb: Sandbox;
  let raw: Buffer;
  beforeAll(async () => {
    sb = await makeSandbox();
    raw = await makeTar([
      { name: 'bin/', type: 'directory' },
      { name: 'bin/busybox', content: await readFile(BUSYBOX), mode: 0o755 },
      { name: 'bin/sh', type: 'symlink', linkname: 'busybox' },
      { name: 'bin/echo', type: 'symlink', linkname: '/bin/busybox' },
      { name: 'bin/ls', type: 'link', linkname: 'bin/busybox' },
      { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\n' },
      { name: 'tmp/', type: 'directory', mode: 0o1777 },
    ]);
    const result = await unpackLayer(sb.rootfs, streamOf(gzipSync(raw)), { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' });
    expect(result.diffID).toBe(sha256(raw));
  });
  afterAll(async () => {
    await sb.assertHostUntouched();
    await sb.cleanup();
  });

  it('runs under chroot: /bin/busybox echo ok', async () => {
    const { stdout } = await run('chroot', [sb.rootfs, '/bin/busybox', 'echo', 'ok']);
    expect(stdout).toBe('ok\n');
  });

  it('runs its applets through symlinks and hardlinks', async () => {
    const { stdout } = await run('chroot', [sb.rootfs, '/bin/sh', '-c', 'echo from-sh; ls /bin; test -k /tmp && echo sticky']);
    expect(stdout.split('\n')).toEqual(['from-sh', 'busybox', 'echo', 'ls', 'sh', 'sticky', '']);
  });
});
