import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LayerTooLargeError, UnsafeLayerEntryError, unpackLayer, type UnpackResult } from '../../src/runtime/unpack/index.js';
import { makeSandbox, makeTar, unpackVia, UNPACK_MODES, type UnpackMode, streamOf, type Sandbox, type TarEntrySpec } from './helpers.js';

const isRoot = process.geteuid?.() === 0;

let sb: Sandbox;
/** Which way the suite being run unpacks (set by each suite's beforeEach). */
let mode: UnpackMode = 'streamed';
beforeEach(async () => {
  sb = await makeSandbox();
});
afterEach(async () => {
  await sb.cleanup();
});

async function unpack(entries: TarEntrySpec[], opts: Parameters<typeof unpackLayer>[2] = {}): Promise<UnpackResult> {
  return unpackVia(mode, sb.rootfs, streamOf(await makeTar(entries)), opts);
}

async function expectRefused(entries: TarEntrySpec[], path: string, reason: RegExp): Promise<UnsafeLayerEntryError> {
  const err = await unpack(entries).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UnsafeLayerEntryError);
  const u = err as UnsafeLayerEntryError;
  expect(u.code).toBe('UNSAFE_LAYER_ENTRY');
  expect(u.path).toBe(path);
  expect(u.reason).toMatch(reason);
  expect(u.message).toContain(`refusing layer entry ${JSON.stringify(path)}`);
  return u;
}

/** A name no real host has, so "it does not exist on the host" proves something. */
const token = () => `stevedore-pwned-${randomBytes(6).toString('hex')}`;

describe.each(UNPACK_MODES)('hostile layers are refused or contained (%s unpack)', (m) => {
  beforeEach(() => {
    mode = m;
  });
  it('refuses a file named ../../x (path traversal)', async () => {
    await expectRefused(
      [
        { name: 'ok', content: 'fine' },
        { name: '../../x', content: 'pwned' },
      ],
      '../../x',
      /path escapes the root/,
    );
    await sb.assertHostUntouched();
  });

  it('refuses a traversal hidden behind a directory name (a/../../outside/sentinel)', async () => {
    await expectRefused([{ name: 'a/../../outside/sentinel', content: 'pwned' }], 'a/../../outside/sentinel', /escapes the root/);
    await sb.assertHostUntouched();
  });

  it('refuses a traversal carried in a PAX path record', async () => {
    const name = `../../${'p'.repeat(150)}`;
    await expectRefused([{ name, content: 'pwned', pax: {} }], name, /escapes the root/);
    await sb.assertHostUntouched();
  });

  it('puts an absolute name (/etc/x) inside the rootfs, as Docker does', async () => {
    const t = token();
    await unpack([{ name: `/etc/${t}`, content: 'inside' }]);
    expect(await readFile(join(sb.rootfs, 'etc', t), 'utf8')).toBe('inside');
    expect(existsSync(`/etc/${t}`)).toBe(false);
    await sb.assertHostUntouched();
  });

  it('contains writes through an absolute symlink to / (link -> /, then link/x)', async () => {
    const t = token();
    await unpack([
      { name: 'link', type: 'symlink', linkname: '/' },
      { name: `link/${t}`, content: 'inside' },
    ]);
    expect(await readFile(join(sb.rootfs, t), 'utf8')).toBe('inside');
    expect(existsSync(`/${t}`)).toBe(false);
    expect(await readlink(join(sb.rootfs, 'link'))).toBe('/'); // the symlink itself is kept verbatim
    await sb.assertHostUntouched();
  });

  it('contains writes through a symlink naming a host directory (esc -> <outside>, then esc/sentinel)', async () => {
    await unpack([
      { name: 'esc', type: 'symlink', linkname: sb.outside },
      { name: 'esc/sentinel', content: 'pwned' },
    ]);
    expect(await readFile(join(sb.rootfs, sb.outside, 'sentinel'), 'utf8')).toBe('pwned');
    await sb.assertHostUntouched();
  });

  it('contains writes through a relative symlink that climbs (link -> ../../.., then link/x)', async () => {
    const t = token();
    await unpack([
      { name: 'deep/er/link', type: 'symlink', linkname: '../../../../..' },
      { name: `deep/er/link/${t}`, content: 'inside' },
      { name: 'l2', type: 'symlink', linkname: '../outside' },
      { name: 'l2/sentinel', content: 'pwned' },
    ]);
    expect(await readFile(join(sb.rootfs, t), 'utf8')).toBe('inside');
    expect(await readFile(join(sb.rootfs, 'outside', 'sentinel'), 'utf8')).toBe('pwned');
    await sb.assertHostUntouched();
  });

  it('contains a parent directory swapped for a symlink by a later layer (d, then d -> outside, then d/x)', async () => {
    await unpack([
      { name: 'd', type: 'directory' },
      { name: 'd/keep', content: '1' },
    ]);
    await unpack([{ name: 'd', type: 'symlink', linkname: sb.outside }]);
    await unpack([
      { name: 'd/x', content: 'pwned' },
      { name: 'd/sentinel', content: 'pwned' },
    ]);
    expect((await lstat(join(sb.rootfs, 'd'))).isSymbolicLink()).toBe(true);
    expect(await readFile(join(sb.rootfs, sb.outside, 'x'), 'utf8')).toBe('pwned');
    await sb.assertHostUntouched();
  });

  it('contains a parent directory swapped for a symlink within the same layer (d/a, d -> outside, d/b)', async () => {
    await unpack([
      { name: 'd/a', content: '1' }, // d is now a known, resolved parent
      { name: 'd', type: 'symlink', linkname: sb.outside },
      { name: 'd/b', content: 'pwned' },
      { name: 'd/sentinel', content: 'pwned' },
    ]);
    expect(await readFile(join(sb.rootfs, sb.outside, 'b'), 'utf8')).toBe('pwned');
    await sb.assertHostUntouched();
  });

  it('replaces a final-component symlink instead of writing through it', async () => {
    await unpack([{ name: 's', type: 'symlink', linkname: join(sb.outside, 'sentinel') }]);
    await unpack([{ name: 's', content: 'pwned', mode: 0o666 }]);
    const st = await lstat(join(sb.rootfs, 's'));
    expect(st.isFile()).toBe(true);
    expect(await readFile(join(sb.rootfs, 's'), 'utf8')).toBe('pwned');
    await sb.assertHostUntouched();
  });

  it('never chmods or touches a host directory through a directory entry over a symlink', async () => {
    await unpack([
      { name: 'sd', type: 'symlink', linkname: sb.outside },
      { name: 'sd', type: 'directory', mode: 0o777, mtime: new Date('1999-01-01T00:00:00Z') },
      { name: 'sd/inner', content: 'x' },
    ]);
    expect((await lstat(join(sb.rootfs, 'sd'))).isDirectory()).toBe(true);
    expect((await stat(join(sb.rootfs, 'sd'))).mode & 0o7777).toBe(0o777);
    await sb.assertHostUntouched();
  });

  it('does not apply deferred directory metadata through a parent later replaced by a symlink', async () => {
    await unpack([
      { name: 'p', type: 'directory' },
      { name: 'p/outside', type: 'directory', mode: 0o777, mtime: new Date('1990-01-01T00:00:00Z') }, // applied at the end
      // The tree is replaced: to the kernel, <rootfs>/p/outside now means the host's <top>/outside.
      { name: 'p', type: 'symlink', linkname: sb.top },
    ]);
    await sb.assertHostUntouched();
  });

  it('refuses a hardlink to a path outside the root', async () => {
    await expectRefused([{ name: 'h', type: 'link', linkname: '../outside/sentinel' }], 'h', /hardlink target "..\/outside\/sentinel" escapes the root/);
    // An absolute host path is read inside the rootfs, where it does not exist.
    await expectRefused([{ name: 'h', type: 'link', linkname: join(sb.outside, 'sentinel') }], 'h', /does not exist in the rootfs/);
    await sb.assertHostUntouched();
  });

  it('refuses hardlinks through or onto symlinks', async () => {
    await expectRefused(
      [
        { name: 'esc', type: 'symlink', linkname: sb.outside },
        { name: 'h', type: 'link', linkname: 'esc/sentinel' },
      ],
      'h',
      /does not exist in the rootfs/,
    );
    await expectRefused(
      [
        { name: 'tolink', type: 'symlink', linkname: join(sb.outside, 'sentinel') },
        { name: 'h2', type: 'link', linkname: 'tolink' },
      ],
      'h2',
      /is not a regular file/,
    );
    await expectRefused(
      [
        { name: 'dir', type: 'directory' },
        { name: 'h3', type: 'link', linkname: 'dir' },
      ],
      'h3',
      /is not a regular file/,
    );
    await sb.assertHostUntouched();
  });

  it('refuses whiteouts of . and .. (.wh.. and .wh...)', async () => {
    await unpack([{ name: 'd/keep', content: '1' }]);
    await expectRefused([{ name: 'd/new', content: '2' }, { name: 'd/.wh...' }], 'd/.wh...', /whiteout of "\.\."/);
    await expectRefused([{ name: '.wh..' }], '.wh..', /whiteout of "\."/);
    expect(await readFile(join(sb.rootfs, 'd', 'keep'), 'utf8')).toBe('1');
    // Streamed, entries before the refused one are on disk (the caller discards the snapshot);
    // staged, the refusal comes before anything is applied.
    expect(existsSync(join(sb.rootfs, 'd', 'new'))).toBe(mode === 'streamed');
    await sb.assertHostUntouched();
  });

  it('refuses a whiteout that climbs out of the root (../.wh.outside)', async () => {
    await expectRefused([{ name: '../.wh.outside' }], '../.wh.outside', /escapes the root/);
    await expectRefused([{ name: 'a/../../.wh.sentinel-top' }], 'a/../../.wh.sentinel-top', /escapes the root/);
    await sb.assertHostUntouched();
  });

  it('keeps whiteouts and opaque markers behind a symlink inside the root', async () => {
    await unpack([{ name: 'esc', type: 'symlink', linkname: sb.outside }]);
    await unpack([{ name: 'esc/.wh.sentinel' }, { name: 'esc/.wh..wh..opq' }]);
    await unpack([{ name: 'esc2', type: 'symlink', linkname: '../../..' }, { name: 'esc2/.wh..wh..opq' }]);
    await sb.assertHostUntouched();
  });

  it('skips device nodes and fifos with a recorded reason and creates nothing', async () => {
    const result = await unpack([
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0 },
      { name: 'run/pipe', type: 'fifo' },
    ]);
    expect(result.skipped.map((s) => [s.path, s.type])).toEqual([
      ['dev/null', 'character-device'],
      ['dev/sda', 'block-device'],
      ['run/pipe', 'fifo'],
    ]);
    expect(result.skipped[0].reason).toMatch(/mknod/);
    expect(existsSync(join(sb.rootfs, 'dev/null'))).toBe(false);
    expect(existsSync(join(sb.rootfs, 'dev/sda'))).toBe(false);
    expect(existsSync(join(sb.rootfs, 'run/pipe'))).toBe(false);
    await sb.assertHostUntouched();
  });

  it.runIf(isRoot)('keeps setuid and setgid bits (chmod after chown)', async () => {
    await unpack([
      { name: 'bin/su', content: 'x', mode: 0o4755, uid: 0, gid: 0 },
      { name: 'bin/wall', content: 'x', mode: 0o2755, uid: 1000, gid: 5 },
      { name: 'bin/suid-user', content: 'x', mode: 0o6711, uid: 1000, gid: 1000 },
      { name: 'tmp', type: 'directory', mode: 0o1777 },
    ]);
    const su = await stat(join(sb.rootfs, 'bin/su'));
    expect(su.mode & 0o7777).toBe(0o4755);
    const wall = await stat(join(sb.rootfs, 'bin/wall'));
    expect([wall.mode & 0o7777, wall.uid, wall.gid]).toEqual([0o2755, 1000, 5]);
    const u = await stat(join(sb.rootfs, 'bin/suid-user'));
    expect([u.mode & 0o7777, u.uid, u.gid]).toEqual([0o6711, 1000, 1000]);
    expect((await stat(join(sb.rootfs, 'tmp'))).mode & 0o7777).toBe(0o1777);
    await sb.assertHostUntouched();
  });

  it('stops a gzip bomb at the byte limit with LAYER_TOO_LARGE', async () => {
    const bomb = gzipSync(await makeTar([{ name: 'zeros', content: Buffer.alloc(32 * 1024 * 1024) }]), { level: 9 });
    expect(bomb.length).toBeLessThan(100 * 1024);
    const err = await unpackLayer(sb.rootfs, streamOf(bomb), { limits: { maxBytes: 1024 * 1024 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LayerTooLargeError);
    expect((err as LayerTooLargeError).code).toBe('LAYER_TOO_LARGE');
    expect((err as Error).message).toMatch(/1048576-byte limit/);
    const partial = await stat(join(sb.rootfs, 'zeros')).catch(() => undefined);
    expect(partial?.size ?? 0).toBeLessThanOrEqual(1024 * 1024);
    await sb.assertHostUntouched();
  });

  it('stops a layer with too many entries with LAYER_TOO_LARGE', async () => {
    const entries: TarEntrySpec[] = Array.from({ length: 2500 }, (_, i) => ({ name: `f/${i}` }));
    const err = await unpack(entries, { limits: { maxEntries: 1000 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LayerTooLargeError);
    expect((err as LayerTooLargeError).code).toBe('LAYER_TOO_LARGE');
    expect((err as Error).message).toMatch(/1000-entry limit/);
    await sb.assertHostUntouched();
  });

  it('refuses a symlink loop instead of spinning (a -> b, b -> a, then a/x)', async () => {
    await expectRefused(
      [
        { name: 'a', type: 'symlink', linkname: 'b' },
        { name: 'b', type: 'symlink', linkname: 'a' },
        { name: 'a/x', content: 'x' },
      ],
      'a/x',
      /too many levels of symbolic links/,
    );
    await sb.assertHostUntouched();
  });

  it('writing a file over a hardlink does not change the other name', async () => {
    await unpack([
      { name: 'etc/shadow', content: 'secret', mode: 0o600 },
      { name: 'h', type: 'link', linkname: 'etc/shadow' },
    ]);
    await unpack([{ name: 'h', content: 'overwritten' }]);
    expect(await readFile(join(sb.rootfs, 'etc/shadow'), 'utf8')).toBe('secret');
    expect(await readFile(join(sb.rootfs, 'h'), 'utf8')).toBe('overwritten');
    await sb.assertHostUntouched();
  });

  it('unpacks long names carried in PAX records', async () => {
    const long = `${'a'.repeat(120)}/${'b'.repeat(200)}/file`;
    const longLink = `${'c'.repeat(150)}/link`;
    await unpack([
      { name: long, content: 'long', pax: {} },
      { name: longLink, type: 'symlink', linkname: `/${long}`, pax: {} },
    ]);
    expect(await readFile(join(sb.rootfs, long), 'utf8')).toBe('long');
    expect(await readlink(join(sb.rootfs, longLink))).toBe(`/${long}`);
    await sb.assertHostUntouched();
  });
});
