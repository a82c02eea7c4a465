import { mkdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { request, type Dispatcher } from 'undici';
import { digestAlgorithm, digestHex, type Digest } from '../oci/digest.js';
import type { ImageReference } from '../oci/reference.js';
import { errorMessage, StevedoreError, UnsupportedError } from '../util/errors.js';
import { withFileLock, writeFileAtomic } from '../util/fs.js';
import { MAX_SIGNATURE_BYTES } from './simple-signing.js';
import { lookasideBase, type RegistriesD } from './registries-d.js';

/** More signatures than any image has; a lookaside that keeps answering is cut off here. */
export const MAX_LOOKASIDE_SIGNATURES = 128;

/** A lookaside store that could not be read or written (not "no signatures", which is an empty list). */
export class LookasideError extends StevedoreError {
  constructor(message: string, opts: { cause?: unknown; retryable?: boolean } = {}) {
    super('LOOKASIDE_ERROR', message, opts);
  }
}

/**
 * The directory URL of one manifest's signatures: `<base>/<repository path>@<algo>=<hex>`, the
 * repository without its registry host (containers/image's layout, so skopeo and podman share it).
 */
export function signatureDirURL(base: string, ref: ImageReference, digest: Digest): string {
  return `${base.replace(/\/+$/, '')}/${ref.repository}@${digestAlgorithm(digest)}=${digestHex(digest)}`;
}

async function readHttp(url: string, signal?: AbortSignal): Promise<Buffer | undefined> {
  let res: Dispatcher.ResponseData;
  try {
    res = await request(url, { method: 'GET', signal, headersTimeout: 30_000, bodyTimeout: 30_000 });
  } catch (err) {
    throw new LookasideError(`reading signature ${url}: ${errorMessage(err)}`, { cause: err, retryable: true });
  }
  if (res.statusCode === 404) {
    await res.body.dump();
    return undefined;
  }
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new LookasideError(`reading signature ${url}: HTTP status ${res.statusCode}`, { retryable: res.statusCode >= 500 });
  }
  const declared = Number(res.headers['content-length'] ?? NaN);
  if (declared > MAX_SIGNATURE_BYTES) {
    res.body.destroy();
    throw new LookasideError(`signature ${url} is ${declared} bytes, more than the ${MAX_SIGNATURE_BYTES}-byte limit`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length;
    if (size > MAX_SIGNATURE_BYTES) {
      res.body.destroy();
      throw new LookasideError(`signature ${url} exceeds the ${MAX_SIGNATURE_BYTES}-byte limit`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

async function readOne(url: string, signal?: AbortSignal): Promise<Buffer | undefined> {
  const u = new URL(url);
  if (u.protocol === 'file:') {
    try {
      const data = await readFile(fileURLToPath(u), { signal });
      if (data.length > MAX_SIGNATURE_BYTES) throw new LookasideError(`signature ${url} is more than the ${MAX_SIGNATURE_BYTES}-byte limit`);
      return data;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      if (err instanceof LookasideError) throw err;
      throw new LookasideError(`reading signature ${url}: ${errorMessage(err)}`, { cause: err });
    }
  }
  if (u.protocol === 'http:' || u.protocol === 'https:') return readHttp(url, signal);
  throw new UnsupportedError(`lookaside ${url}: unsupported scheme ${u.protocol}`);
}

/**
 * The signatures stored for a manifest, `signature-1`, `signature-2`, … until the first missing
 * one (a 404 over HTTP, a missing file). Each is returned as stored; none is trusted yet.
 */
export async function readLookasideSignatures(
  config: RegistriesD,
  ref: ImageReference,
  digest: Digest,
  signal?: AbortSignal,
): Promise<Array<{ url: string; bytes: Buffer }>> {
  const dir = signatureDirURL(lookasideBase(config, ref, false), ref, digest);
  const out: Array<{ url: string; bytes: Buffer }> = [];
  for (let i = 1; ; i++) {
    if (i > MAX_LOOKASIDE_SIGNATURES) throw new LookasideError(`${dir}: more than ${MAX_LOOKASIDE_SIGNATURES} signatures`);
    const url = `${dir}/signature-${i}`;
    const bytes = await readOne(url, signal);
    if (!bytes) return out;
    out.push({ url, bytes });
  }
}

/**
 * Adds a signature for a manifest to the lookaside staging area (lookaside-staging, else
 * lookaside): the next free `signature-N`, written atomically under a lock so two signers never
 * take the same number; the same signature bytes already there are not added again. Only file://
 * stores can be written, as in containers/image.
 */
export async function writeLookasideSignature(config: RegistriesD, ref: ImageReference, digest: Digest, signature: Uint8Array): Promise<string> {
  const dir = signatureDirURL(lookasideBase(config, ref, true), ref, digest);
  const u = new URL(dir);
  if (u.protocol !== 'file:') throw new UnsupportedError(`writing signatures to ${dir} is not supported (only file:// lookaside-staging can be written)`);
  const path = fileURLToPath(u);
  await mkdir(path, { recursive: true });
  return withFileLock(`${path}/.lock`, async () => {
    for (let i = 1; ; i++) {
      if (i > MAX_LOOKASIDE_SIGNATURES) throw new LookasideError(`${dir}: more than ${MAX_LOOKASIDE_SIGNATURES} signatures`);
      const url = `${dir}/signature-${i}`;
      const existing = await readOne(url);
      if (existing?.equals(Buffer.from(signature))) return url;
      if (existing) continue;
      await writeFileAtomic(fileURLToPath(url), signature);
      return url;
    }
  });
}
