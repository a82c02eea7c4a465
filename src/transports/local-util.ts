import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addAbortSignal, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Descriptor } from '../oci/descriptor.js';
import { VerifyingStream } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES, parseManifest, type RawManifest } from '../oci/manifest.js';
import { NotFoundError, TooLargeError } from '../util/errors.js';
import { tempSibling } from '../util/fs.js';
import type { TransportContext } from './types.js';

/** Shared file plumbing of the local transports (`oci:`, `dir:`, the archives). */

/** Reads a small document (manifest, config, manifest.json) refusing it before buffering if it is too big. */
export async function readCapped(path: string, limit: number, what: string): Promise<Buffer> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    throw new NotFoundError(`${what} not found (${path})`);
  }
  if (size > limit) throw new TooLargeError(what, limit, size);
  return readFile(path);
}

/** A file's bytes as a stream that errors instead of ending if they do not match `desc`. */
export async function openVerified(path: string, desc: Pick<Descriptor, 'digest' | 'size'>, what: string, signal?: AbortSignal): Promise<Readable> {
  try {
    await stat(path);
  } catch {
    throw new NotFoundError(`${what}: blob ${desc.digest} not found`);
  }
  const verifier = new VerifyingStream({ expected: desc.digest, size: desc.size, what: `${what}: blob ${desc.digest}` });
  const file = createReadStream(path);
  file.on('error', (err) => verifier.destroy(err));
  const out = file.pipe(verifier);
  // Cancelling the read also closes the file.
  verifier.on('close', () => file.destroy());
  return signal ? addAbortSignal(signal, out) : out;
}

/**
 * Stores a stream at `path` only if it matches `desc`: written to a temp sibling, verified, then
 * renamed, so the final name never holds wrong or partial bytes.
 */
export async function writeVerifiedFile(path: string, desc: Pick<Descriptor, 'digest' | 'size'>, stream: Readable, signal?: AbortSignal): Promise<void> {
  const tmp = tempSibling(path);
  const verifier = new VerifyingStream({ expected: desc.digest, size: desc.size });
  try {
    await pipeline(stream, verifier, createWriteStream(tmp, { mode: 0o644 }), signal ? { signal } : {});
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** True when a file exists with the descriptor's size (content is verified again when read). */
export async function hasFileOfSize(path: string, size: number): Promise<boolean> {
  try {
    const st = await stat(path);
    return st.isFile() && (size < 0 || st.size === size);
  } catch {
    return false;
  }
}

/** A private scratch directory for an archive transport, under `ctx.tmpDir` or the OS temp dir. */
export async function makeScratchDir(ctx: TransportContext | undefined, kind: string): Promise<string> {
  return mkdtemp(join(ctx?.tmpDir ?? tmpdir(), `stevedore-${kind}-`));
}

/**
 * Checks a manifest handed to a destination before it is stored: well formed, within the size
 * cap, and named by the digest of its bytes. Returns the parsed document.
 */
export function checkIncomingManifest(m: RawManifest, what: string): ReturnType<typeof parseManifest> {
  if (m.bytes.length > MAX_MANIFEST_BYTES) throw new TooLargeError(`${what}: manifest`, MAX_MANIFEST_BYTES, m.bytes.length);
  return parseManifest(m.bytes, m.mediaType);
}
