import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { opaqueDirectories } from '../../src/build/layers/overlay-xattrs.js';

describe('opaqueDirectories (GNU tar output read with the one tar reader)', () => {
  let upper: string;
  beforeAll(async () => {
    upper = await mkdtemp(join(tmpdir(), 'opaque-'));
    for (const d of ['a', 'b', 'a/c']) await mkdir(join(upper, d));
    // Node cannot set extended attributes; Python's os.setxattr can (user.* as in a rootless overlay).
    execFileSync('python3', ['-c', 'import os,sys; os.setxattr(sys.argv[1], "user.overlay.opaque", b"y")', join(upper, 'a/c')]);
  });
  afterAll(async () => rm(upper, { recursive: true, force: true }));

  it('finds the directories overlayfs marked opaque, and only those', async () => {
    expect([...(await opaqueDirectories(upper, ['a', 'b', 'a/c']))]).toEqual(['a/c']);
  });

  it('says tar is not installed when there is no tar, instead of waiting for output that never comes', async () => {
    const path = process.env.PATH;
    process.env.PATH = upper; // a directory without tar
    try {
      await expect(opaqueDirectories(upper, ['a'])).rejects.toMatchObject({
        code: 'OVERLAY_XATTRS_FAILED',
        message: expect.stringContaining('tar is not installed'),
      });
    } finally {
      process.env.PATH = path;
    }
  });
});
