import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import { gunzipSync, zstdDecompressSync } from 'node:zlib';
import { StevedoreError } from '../../util/errors.js';
import { readFileHead, sniffCompression, fileCompression } from '../../util/tar/compression.js';

/** A tar header block: the checksum field must agree with the block's bytes (the test tar(1) uses). */
export function isTarHeader(block: Uint8Array): boolean {
  if (block.length < 512) return false;
  const field = Buffer.from(block.subarray(148, 156))
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .trim();
  if (!/^[0-7]+$/.test(field)) return false;
  const want = parseInt(field, 8);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i];
  return sum === want;
}

/**
 * Whether a file is a tar archive (plain or compressed) that `ADD` unpacks, decided as Docker does:
 * by content, never by name. Only the first tar block is decompressed to look.
 */
export async function isTarArchive(path: string): Promise<boolean> {
  const head = await readFileHead(path, 64 * 1024);
  const compression = sniffCompression(head);
  try {
    switch (compression) {
      case 'none':
        return isTarHeader(head);
      case 'gzip':
        return isTarHeader(gunzipSync(head, { finishFlush: 2 /* Z_SYNC_FLUSH: a prefix is fine */ }));
      case 'zstd':
        return isTarHeader(zstdDecompressSync(head, { finishFlush: 2 }));
      default:
        // bzip2/xz need the external tools; their magic numbers are specific enough on their own.
        return true;
    }
  } catch {
    return false;
  }
}

/**
 * The tar stream of an archive with bzip2 and xz undone by the system tools (Node has no codec for
 * them); gzip, zstd and plain tars are passed through as they are, for the unpacker to sniff.
 */
export async function openArchive(path: string): Promise<Readable> {
  const compression = await fileCompression(path);
  if (compression !== 'bzip2' && compression !== 'xz') return createReadStream(path);
  const tool = compression === 'xz' ? 'xz' : 'bzip2';
  const child = spawn(tool, ['-dc', path], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = new PassThrough();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  child.stdout.pipe(out, { end: false });
  const fail = (msg: string): void => {
    out.destroy(new StevedoreError('ARCHIVE_DECOMPRESS_FAILED', `${path}: ${msg}`));
  };
  child.once('error', (err) => fail(`cannot run ${tool} to decompress a ${compression} archive: ${err.message}`));
  child.once('close', (code) => {
    // 'close' comes after the child's stdio has ended, so everything has reached `out`.
    if (code === 0) out.end();
    else fail(`${tool} -dc failed (exit ${code}): ${stderr.trim()}`);
  });
  out.once('close', () => child.kill());
  return out;
}
