import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { expect } from 'vitest';
import { applyStagedLayer, stageLayer, unpackLayer, type UnpackOptions, type UnpackResult } from '../../src/runtime/unpack/index.js';

/** A tar entry as a test writes it; content defaults to empty. */
export interface TarEntrySpec {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  content?: string | Buffer;
  mode?: number;
  linkname?: string;
  uid?: number;
  gid?: number;
  mtime?: Date;
  devmajor?: number;
  devminor?: number;
  /** Extra PAX records; any value (even `{}`) forces a PAX header, so the name travels in PAX. */
  pax?: Record<string, string>;
}

const EPOCH = new Date('2020-01-02T03:04:05Z');

/** Builds a tar in memory with tar-stream (tests may buffer; the unpacker may not). */
export async function makeTar(entries: readonly TarEntrySpec[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const c of pack as unknown as AsyncIterable<Buffer>) chunks.push(c);
  })();
  for (const e of entries) {
    const type = e.type ?? 'file';
    const content = e.content === undefined ? Buffer.alloc(0) : Buffer.from(e.content);
    await new Promise<void>((resolve, reject) => {
      pack.entry(
        {
          name: e.name,
          type,
          mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
          uid: e.uid ?? 0,
          gid: e.gid ?? 0,
          mtime: e.mtime ?? EPOCH,
          linkname: e.linkname,
          devmajor: e.devmajor,
          devminor: e.devminor,
          pax: e.pax,
          size: type === 'file' ? content.length : 0,
        },
        type === 'file' ? content : Buffer.alloc(0),
        (err) => (err ? reject(err) : resolve()),
      );
    });
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

export function streamOf(buf: Buffer, chunkSize = 64 * 1024): Readable {
  const chunks: Buffer[] = [];
  for (let off = 0; off < buf.length; off += chunkSize) chunks.push(buf.subarray(off, off + chunkSize));
  return Readable.from(chunks);
}

export function sha256(buf: Buffer): string {
  return `sha256:${createHash('sha256').update(buf).digest('hex')}`;
}

const SENTINEL = 'precious host data\n';
const OLD = new Date('2001-02-03T04:05:06Z');

/**
 * A temp directory holding the rootfs and, next to it, things a hostile layer must not touch: a
 * sibling directory with a sentinel file and a sentinel in the temp root itself.
 */
export interface Sandbox {
  top: string;
  rootfs: string;
  outside: string;
  /** Checks that nothing outside the rootfs changed or appeared. */
  assertHostUntouched(): Promise<void>;
  cleanup(): Promise<void>;
}

export async function makeSandbox(): Promise<Sandbox> {
  const top = await mkdtemp(join(tmpdir(), 'stevedore-unpack-'));
  const rootfs = join(top, 'rootfs');
  const outside = join(top, 'outside');
  await mkdir(rootfs);
  await mkdir(outside, { mode: 0o755 });
  await writeFile(join(outside, 'sentinel'), SENTINEL, { mode: 0o644 });
  await writeFile(join(top, 'sentinel-top'), SENTINEL, { mode: 0o644 });
  await utimes(join(outside, 'sentinel'), OLD, OLD);
  await utimes(join(top, 'sentinel-top'), OLD, OLD);
  await utimes(outside, OLD, OLD);
  const outsideBefore = await stat(outside);

  return {
    top,
    rootfs,
    outside,
    async assertHostUntouched() {
      expect((await readdir(top)).sort()).toEqual(['outside', 'rootfs', 'sentinel-top']);
      expect(await readdir(outside)).toEqual(['sentinel']);
      for (const f of [join(outside, 'sentinel'), join(top, 'sentinel-top')]) {
        expect(await readFile(f, 'utf8')).toBe(SENTINEL);
        const st = await stat(f);
        expect(st.mtimeMs).toBe(OLD.getTime());
        expect(st.mode & 0o7777).toBe(0o644);
        expect(st.nlink).toBe(1); // no hardlink to it was made from inside the rootfs
      }
      const st = await stat(outside);
      expect(st.mtimeMs).toBe(outsideBefore.mtimeMs);
      expect(st.mode).toBe(outsideBefore.mode);
      expect(st.uid).toBe(outsideBefore.uid);
    },
    async cleanup() {
      await rm(top, { recursive: true, force: true });
    },
  };
}

/**
 * The two ways a layer reaches a rootfs: streamed (unpackLayer writes each entry as it arrives)
 * and staged (stageLayer reads and checks the whole layer into a staging dir first, then
 * applyStagedLayer links it in, as the store does). Suites run once per mode: same results.
 */
export type UnpackMode = 'streamed' | 'staged';
export const UNPACK_MODES: readonly UnpackMode[] = ['streamed', 'staged'];

export async function unpackVia(mode: UnpackMode, rootfs: string, stream: Readable, opts: UnpackOptions = {}): Promise<UnpackResult> {
  if (mode === 'streamed') return unpackLayer(rootfs, stream, opts);
  // Beside the sandbox, not in it (the sandbox checks that nothing appears next to its rootfs).
  const stage = await mkdtemp(join(tmpdir(), 'stevedore-stage-'));
  try {
    const staged = await stageLayer(stream, stage, opts);
    return await applyStagedLayer(rootfs, staged, opts);
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}
