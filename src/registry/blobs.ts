import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/descriptor.js';
import { VerifyingStream, type Digest } from '../oci/digest.js';
import { rootLogger } from '../util/log.js';
import { StevedoreError } from '../util/errors.js';
import { repositoryScope } from './auth.js';
import { BlobReader } from './blob-reader.js';
import type { RegistryClient } from './client.js';

const pull = (repo: string) => [repositoryScope(repo, ['pull'])];
const push = (repo: string) => [repositoryScope(repo, ['pull', 'push'])];

export interface BlobOptions {
  signal?: AbortSignal;
}

/** HEAD a blob: its size when present, undefined when the repository does not have it. */
export async function headBlob(client: RegistryClient, repo: string, digest: Digest, opts: BlobOptions = {}): Promise<number | undefined> {
  const res = await client.request({
    method: 'HEAD',
    path: `/v2/${repo}/blobs/${digest}`,
    scopes: pull(repo),
    expect: [200],
    allowStatus: [404],
    signal: opts.signal,
  });
  await res.body.dump();
  if (res.status === 404) return undefined;
  const len = res.headers['content-length'];
  return len === undefined ? -1 : Number(len);
}

/**
 * Streams a blob, verified against `desc` as it flows. A connection that breaks mid-blob is resumed
 * with a Range request from the byte reached (a server that ignores Range is read past the bytes we
 * already have), so a flaky link costs a reconnect rather than the whole layer. The returned stream
 * errors rather than ends if the bytes do not match the digest or size.
 */
export async function getBlob(client: RegistryClient, repo: string, desc: Descriptor, opts: BlobOptions & { resumes?: number } = {}): Promise<Readable> {
  const path = `/v2/${repo}/blobs/${desc.digest}`;
  // The first response is awaited here so that "not found" and auth errors surface from getBlob itself.
  const first = await client.request({ method: 'GET', path, scopes: pull(repo), expect: [200], signal: opts.signal });
  return new BlobReader({
    desc,
    what: `blob ${desc.digest} from ${client.registry}/${repo}`,
    first,
    reopen: (from) =>
      client.request({ method: 'GET', path, scopes: pull(repo), headers: { range: `bytes=${from}-` }, expect: [200, 206], signal: opts.signal }),
    maxResumes: opts.resumes ?? 5,
    signal: opts.signal,
    log: rootLogger.child({ registry: client.registry, repo, digest: desc.digest }),
  });
}

/** Starts an upload session; returns its Location (absolute URL). */
async function startUpload(client: RegistryClient, repo: string, signal?: AbortSignal): Promise<string> {
  const res = await client.request({
    method: 'POST',
    path: `/v2/${repo}/blobs/uploads/`,
    scopes: push(repo),
    headers: { 'content-length': '0' },
    body: Buffer.alloc(0),
    expect: [202],
    signal,
  });
  await res.body.dump();
  return locationOf(res.headers.location, res.url);
}

function locationOf(location: string | string[] | undefined, base: string): string {
  const loc = Array.isArray(location) ? location[0] : location;
  if (!loc) throw new StevedoreError('REGISTRY_ERROR', `registry gave no Location for the upload (${base})`);
  return new URL(loc, base).toString();
}

function withDigest(location: string, digest: Digest): string {
  const u = new URL(location);
  u.searchParams.set('digest', digest);
  return u.toString();
}

async function cancelUpload(client: RegistryClient, repo: string, location: string): Promise<void> {
  try {
    const res = await client.request({
      method: 'DELETE',
      path: location,
      scopes: push(repo),
      expect: [204, 200, 202],
      allowStatus: [404, 405, 400],
      body: Buffer.alloc(0),
    });
    await res.body.dump();
  } catch {
    // Best effort: the registry expires abandoned upload sessions on its own.
  }
}

export interface UploadOptions extends BlobOptions {
  /** Upload in PATCH chunks of this many bytes instead of one streamed PUT (for registries that need it). */
  chunkSize?: number;
  /**
   * The stream is already verified against `desc` (every ImageSource stream is), so it is not
   * hashed a second time here; the registry still checks the digest before it commits the blob.
   * Hashing 64 MiB layers twice was a measurable part of a cold copy's CPU time.
   */
  sourceVerified?: boolean;
}

/**
 * Uploads a blob from a stream: POST to open a session, then a single streamed PUT with the
 * digest (monolithic) or PATCH chunks and a closing PUT. The registry commits the blob only on a
 * PUT whose bytes match the digest, and our own VerifyingStream aborts the request first if they
 * do not, so a bad source never becomes a blob.
 */
export async function uploadBlob(client: RegistryClient, repo: string, desc: Descriptor, stream: Readable, opts: UploadOptions = {}): Promise<void> {
  const location = await startUpload(client, repo, opts.signal);
  let verified = stream;
  if (!opts.sourceVerified) {
    verified = stream.pipe(new VerifyingStream({ expected: desc.digest, size: desc.size, what: `blob ${desc.digest}` }));
    stream.on('error', (err) => verified.destroy(err));
  }
  try {
    if (opts.chunkSize && opts.chunkSize > 0) {
      await uploadChunked(client, repo, desc, verified, location, opts.chunkSize, opts.signal);
    } else {
      const res = await client.request({
        method: 'PUT',
        path: withDigest(location, desc.digest),
        scopes: push(repo),
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
        body: verified,
        expect: [201, 204],
        signal: opts.signal,
      });
      await res.body.dump();
    }
  } catch (err) {
    stream.destroy();
    await cancelUpload(client, repo, location);
    throw err;
  }
}

async function uploadChunked(
  client: RegistryClient,
  repo: string,
  desc: Descriptor,
  stream: Readable,
  location: string,
  chunkSize: number,
  signal?: AbortSignal,
): Promise<void> {
  let offset = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flush = async () => {
    if (pendingBytes === 0) return;
    const body = Buffer.concat(pending, pendingBytes);
    const res = await client.request({
      method: 'PATCH',
      path: location,
      scopes: push(repo),
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + body.length - 1}`, 'content-length': String(body.length) },
      body,
      expect: [202],
      signal,
    });
    await res.body.dump();
    location = locationOf(res.headers.location, res.url);
    offset += body.length;
    pending = [];
    pendingBytes = 0;
  };
  for await (const chunk of stream) {
    let b = chunk as Buffer;
    while (b.length > 0) {
      const take = Math.min(b.length, chunkSize - pendingBytes);
      pending.push(b.subarray(0, take));
      pendingBytes += take;
      b = b.subarray(take);
      if (pendingBytes === chunkSize) await flush();
    }
  }
  await flush();
  const res = await client.request({
    method: 'PUT',
    path: withDigest(location, desc.digest),
    scopes: push(repo),
    headers: { 'content-length': '0' },
    body: Buffer.alloc(0),
    expect: [201, 204],
    signal,
  });
  await res.body.dump();
}

/**
 * Asks the registry to link a blob from another repository it holds (cross-repository mount), so
 * nothing is uploaded. True when mounted; false when the registry started an upload instead
 * (no access to the source repository, or it lacks the blob), which is then cancelled.
 */
export async function mountBlob(client: RegistryClient, repo: string, digest: Digest, fromRepo: string, opts: BlobOptions = {}): Promise<boolean> {
  const path = `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(fromRepo)}`;
  const res = await client.request({
    method: 'POST',
    path,
    scopes: [...push(repo), ...pull(fromRepo)],
    headers: { 'content-length': '0' },
    body: Buffer.alloc(0),
    expect: [201, 202],
    signal: opts.signal,
  });
  await res.body.dump();
  if (res.status === 201) return true;
  await cancelUpload(client, repo, locationOf(res.headers.location, res.url));
  return false;
}

export async function deleteBlob(client: RegistryClient, repo: string, digest: Digest, opts: BlobOptions = {}): Promise<void> {
  const res = await client.request({
    method: 'DELETE',
    path: `/v2/${repo}/blobs/${digest}`,
    scopes: [repositoryScope(repo, ['delete'])],
    expect: [202, 200],
    signal: opts.signal,
  });
  await res.body.dump();
}
