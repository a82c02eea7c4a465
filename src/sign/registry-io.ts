import { Readable } from 'node:stream';
import type { Descriptor } from '../oci/descriptor.js';
import { digestBytes } from '../oci/digest.js';
import { getBlob, headBlob, uploadBlob } from '../registry/blobs.js';
import type { RegistryClient } from '../registry/client.js';
import { streamToBuffer } from '../util/streams.js';

/**
 * Small documents of signatures and attestations (payloads, bundles, configs) go to and from the
 * registry whole: they are a few KiB, capped here so a hostile registry cannot make us buffer more.
 */
export const MAX_SIGNATURE_BLOB_BYTES = 4 * 1024 * 1024;

/** Uploads a small blob unless the repository already has it; returns its descriptor. */
export async function pushSmallBlob(client: RegistryClient, repo: string, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<Descriptor> {
  const desc: Descriptor = { mediaType, digest: digestBytes(bytes), size: bytes.length };
  const have = await headBlob(client, repo, desc.digest, { signal });
  if (have === undefined) await uploadBlob(client, repo, desc, Readable.from([bytes]), { signal });
  return desc;
}

/** Reads a small blob, verified against its digest and capped. */
export async function readSmallBlob(client: RegistryClient, repo: string, desc: Descriptor, signal?: AbortSignal): Promise<Buffer> {
  if (desc.size > MAX_SIGNATURE_BLOB_BYTES)
    throw new Error(`blob ${desc.digest} is ${desc.size} bytes; signature blobs are capped at ${MAX_SIGNATURE_BLOB_BYTES}`);
  const stream = await getBlob(client, repo, desc, { signal });
  return streamToBuffer(stream, MAX_SIGNATURE_BLOB_BYTES, `blob ${desc.digest}`);
}
