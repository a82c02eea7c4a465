/** Reads a layer the builder wrote back, independently of the writer: gunzip + tar-stream, and GNU tar. */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import type { LayerFile } from '../../../src/build/layers/layer-file.js';

export interface ReadEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size: number;
  linkname?: string;
  uname?: string;
  gname?: string;
  content?: string;
  devmajor?: number;
  devminor?: number;
}

export async function readLayer(path: string): Promise<ReadEntry[]> {
  const out: ReadEntry[] = [];
  const extract = tar.extract();
  const feeding = pipeline(createReadStream(path), createGunzip(), extract);
  for await (const entry of extract) {
    const h = entry.header;
    const pax = (h.pax ?? {}) as Record<string, string>;
    const chunks: Buffer[] = [];
    for await (const c of entry as unknown as Readable) chunks.push(c as Buffer);
    out.push({
      name: h.name,
      type: h.type ?? 'file',
      mode: h.mode ?? 0,
      // tar-stream exposes pax records but does not apply the id ones itself.
      uid: pax.uid !== undefined ? Number(pax.uid) : (h.uid ?? 0),
      gid: pax.gid !== undefined ? Number(pax.gid) : (h.gid ?? 0),
      mtime: Math.floor((h.mtime?.getTime() ?? 0) / 1000),
      size: h.size ?? 0,
      ...(h.linkname ? { linkname: h.linkname } : {}),
      uname: h.uname,
      gname: h.gname,
      ...(h.type === 'file' ? { content: Buffer.concat(chunks).toString('utf8') } : {}),
      ...(h.type === 'character-device' || h.type === 'block-device' ? { devmajor: h.devmajor, devminor: h.devminor } : {}),
    });
  }
  await feeding;
  return out;
}

export function byName(entries: ReadEntry[]): Map<string, ReadEntry> {
  return new Map(entries.map((e) => [e.name, e]));
}

/** Recomputes both digests from the bytes on disk. */
export function checkDigests(layer: LayerFile): { digest: string; diffID: string; size: number } {
  const bytes = readFileSync(layer.path);
  return {
    digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
    diffID: `sha256:${createHash('sha256').update(gunzipSync(bytes)).digest('hex')}`,
    size: bytes.length,
  };
}

/** GNU tar's listing (`tar -tvzf --numeric-owner`), one line per entry. */
export function gnuTarList(path: string): string[] {
  return execFileSync('tar', ['--numeric-owner', '-tvzf', path], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
}
