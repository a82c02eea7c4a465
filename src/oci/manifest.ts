import { InvalidInputError, TooLargeError } from '../util/errors.js';
import { isObject } from '../util/is-object.js';
import type { Descriptor } from './descriptor.js';
import { digestBytes, isDigest, type Digest } from './digest.js';
import { isImageManifestMediaType, isIndexMediaType, MediaType } from './mediatype.js';

/** Registries and containers/image refuse manifests above 4 MiB; so do we, before buffering more. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** An image manifest, OCI or Docker schema 2 (the two share a shape). */
export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** An image index, OCI or Docker manifest list. */
export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** A manifest document as fetched: the exact bytes (digests are over bytes, never re-serialised JSON). */
export interface RawManifest {
  bytes: Buffer;
  mediaType: string;
  digest: Digest;
}

export type ParsedManifest = { kind: 'image'; mediaType: string; manifest: ImageManifest } | { kind: 'index'; mediaType: string; index: ImageIndex };

function checkDescriptor(d: unknown, where: string): Descriptor {
  if (!isObject(d)) throw new InvalidInputError(`malformed manifest: ${where} is not an object`);
  if (typeof d.mediaType !== 'string' || d.mediaType === '') {
    throw new InvalidInputError(`malformed manifest: ${where}.mediaType missing`);
  }
  if (typeof d.digest !== 'string' || !isDigest(d.digest)) {
    throw new InvalidInputError(`malformed manifest: ${where}.digest "${String(d.digest)}" is not a valid digest`);
  }
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new InvalidInputError(`malformed manifest: ${where}.size must be a non-negative integer`);
  }
  return d as unknown as Descriptor;
}

/**
 * Works out what a manifest document is from its own `mediaType` field, falling back to the
 * media type the transport reported and finally to its shape (OCI allows omitting mediaType).
 */
export function detectManifestMediaType(doc: Record<string, unknown>, reported?: string): string {
  if (typeof doc.mediaType === 'string' && doc.mediaType !== '') return doc.mediaType;
  if (reported && (isIndexMediaType(reported) || isImageManifestMediaType(reported))) return reported;
  if (Array.isArray(doc.manifests)) return MediaType.OciIndex;
  if (isObject(doc.config)) return MediaType.OciManifest;
  if (doc.schemaVersion === 1) return MediaType.DockerSchema1;
  return reported ?? 'application/octet-stream';
}

/**
 * Parses and validates a manifest or index. Refuses oversize documents, unknown media types,
 * schema 1, and descriptors that are not well formed, each with a reason.
 */
export function parseManifest(bytes: Uint8Array, reportedMediaType?: string): ParsedManifest {
  if (bytes.length > MAX_MANIFEST_BYTES) throw new TooLargeError('manifest', MAX_MANIFEST_BYTES, bytes.length);
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new InvalidInputError(`malformed manifest: not JSON (${(err as Error).message})`);
  }
  if (!isObject(doc)) throw new InvalidInputError('malformed manifest: not a JSON object');
  const mediaType = detectManifestMediaType(doc, reportedMediaType);
  if (mediaType === MediaType.DockerSchema1 || mediaType === MediaType.DockerSchema1Signed) {
    throw new InvalidInputError('unsupported manifest: Docker schema 1 is deprecated; convert the image to schema 2 or OCI');
  }
  if (doc.schemaVersion !== 2) throw new InvalidInputError(`malformed manifest: schemaVersion must be 2, got ${String(doc.schemaVersion)}`);
  if (isIndexMediaType(mediaType)) {
    if (!Array.isArray(doc.manifests)) throw new InvalidInputError('malformed index: "manifests" must be an array');
    doc.manifests.forEach((d, i) => checkDescriptor(d, `manifests[${i}]`));
    if (doc.subject !== undefined) checkDescriptor(doc.subject, 'subject');
    return { kind: 'index', mediaType, index: doc as unknown as ImageIndex };
  }
  if (isImageManifestMediaType(mediaType)) {
    checkDescriptor(doc.config, 'config');
    if (!Array.isArray(doc.layers)) throw new InvalidInputError('malformed manifest: "layers" must be an array');
    doc.layers.forEach((d, i) => checkDescriptor(d, `layers[${i}]`));
    if (doc.subject !== undefined) checkDescriptor(doc.subject, 'subject');
    return { kind: 'image', mediaType, manifest: doc as unknown as ImageManifest };
  }
  throw new InvalidInputError(`unsupported manifest media type "${mediaType}"`);
}

/** Serialises a manifest we author (compact JSON, as registries store it) and names it by digest. */
export function encodeManifest(doc: ImageManifest | ImageIndex): RawManifest {
  const bytes = Buffer.from(JSON.stringify(doc));
  const mediaType = doc.mediaType ?? (Array.isArray((doc as ImageIndex).manifests) ? MediaType.OciIndex : MediaType.OciManifest);
  return { bytes, mediaType, digest: digestBytes(bytes) };
}

/** Every blob an image manifest references: config first, then layers in order. */
export function manifestBlobs(m: ImageManifest): Descriptor[] {
  return [m.config, ...m.layers];
}
