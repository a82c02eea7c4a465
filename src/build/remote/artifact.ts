/**
 * A build context as an OCI artifact: a manifest with artifactType CONTEXT_ARTIFACT_TYPE, the
 * empty config, and one layer holding the context as a gzip tar. `stevedore build --remote` pushes
 * one; the build Pod's init container fetches it and extracts it with the layer unpacker's rules
 * (no entry leaves the target directory, symlinks are contained, size limits hold).
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Descriptor } from '../../oci/descriptor.js';
import { digestBytes, type Digest } from '../../oci/digest.js';
import { encodeManifest, parseManifest, type ImageManifest } from '../../oci/manifest.js';
import { MediaType } from '../../oci/mediatype.js';
import { formatReference, parseReference, referenceTarget, type ImageReference } from '../../oci/reference.js';
import { getBlob, headBlob, uploadBlob } from '../../registry/blobs.js';
import { getManifest, putManifest } from '../../registry/manifests.js';
import { registryClientFor } from '../../transports/docker.js';
import type { TransportContext } from '../../transports/types.js';
import { unpackLayer } from '../../runtime/unpack/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { packContext, type ContextIgnore } from './pack.js';

export const CONTEXT_ARTIFACT_TYPE = 'application/vnd.stevedore.build-context.v1';
const EMPTY_CONFIG = Buffer.from('{}');
const EMPTY_DESCRIPTOR: Descriptor = {
  mediaType: MediaType.OciEmpty,
  digest: digestBytes(EMPTY_CONFIG),
  size: EMPTY_CONFIG.length,
  data: EMPTY_CONFIG.toString('base64'),
};
/** Default cap on the uncompressed context (a context is source code, not a dataset). */
export const DEFAULT_CONTEXT_MAX_BYTES = 4 * 1024 ** 3;

export interface PushContextOptions {
  ignore?: ContextIgnore;
  keep?: string[];
  ctx?: TransportContext;
  signal?: AbortSignal;
}

export interface PushedContext {
  /** registry/repo@sha256:… of the artifact manifest: what an ImageBuild's source.artifact.image names. */
  reference: string;
  digest: Digest;
  /** Compressed size of the context layer. */
  size: number;
  files: number;
  /** True when the registry already had the layer (an unchanged context). */
  reused: boolean;
}

function parseRef(name: string): ImageReference {
  return parseReference(name.replace(/^docker:\/\//, ''));
}

/** Packs `dir` and pushes it as a context artifact to `ref` (a tag, default `latest`). */
export async function pushContext(dir: string, name: string, o: PushContextOptions = {}): Promise<PushedContext> {
  const ref = parseRef(name);
  const work = await mkdtemp(join(tmpdir(), 'stevedore-context-'));
  const client = registryClientFor(ref, o.ctx);
  try {
    const packed = await packContext(dir, join(work, 'context.tar.gz'), { ignore: o.ignore, keep: o.keep, signal: o.signal });
    const layer: Descriptor = {
      mediaType: MediaType.OciLayerGzip,
      digest: packed.digest,
      size: packed.size,
      annotations: { 'org.opencontainers.image.title': 'context.tar.gz' },
    };
    const repo = ref.repository;
    const reused = (await headBlob(client, repo, layer.digest, { signal: o.signal })) === layer.size;
    if (!reused) await uploadBlob(client, repo, layer, createReadStream(packed.path), { signal: o.signal });
    if ((await headBlob(client, repo, EMPTY_DESCRIPTOR.digest, { signal: o.signal })) === undefined) {
      await uploadBlob(client, repo, EMPTY_DESCRIPTOR, Readable.from([EMPTY_CONFIG]), { signal: o.signal });
    }
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      artifactType: CONTEXT_ARTIFACT_TYPE,
      config: EMPTY_DESCRIPTOR,
      layers: [layer],
    };
    const raw = encodeManifest(manifest);
    await putManifest(client, repo, ref.tag ?? (ref.digest ? raw.digest : 'latest'), raw, { signal: o.signal });
    return {
      reference: formatReference({ registry: ref.registry, repository: repo, digest: raw.digest }),
      digest: raw.digest,
      size: packed.size,
      files: packed.files,
      reused,
    };
  } finally {
    await client.close();
    await rm(work, { recursive: true, force: true });
  }
}

export interface FetchContextOptions {
  ctx?: TransportContext;
  maxBytes?: number;
  signal?: AbortSignal;
}

export interface FetchedContext {
  /** Digest of the artifact manifest: the exact context that was built. */
  digest: Digest;
  entries: number;
  bytes: number;
}

/** Fetches a context artifact and extracts its layer into `destDir` (an existing directory). */
export async function fetchContext(name: string, destDir: string, o: FetchContextOptions = {}): Promise<FetchedContext> {
  const ref = parseRef(name);
  const client = registryClientFor(ref, o.ctx);
  try {
    const raw = await getManifest(client, ref.repository, referenceTarget(ref), { signal: o.signal });
    const parsed = parseManifest(raw.bytes, raw.mediaType);
    const where = formatReference(ref);
    if (parsed.kind !== 'image') throw new InvalidInputError(`${where} is an image index, not a build context artifact`);
    const layers = parsed.manifest.layers;
    if (layers.length !== 1) {
      throw new InvalidInputError(`${where} has ${layers.length} layers; a build context artifact has exactly one (a tar or tar+gzip of the context)`);
    }
    const layer = layers[0]!;
    if (!/^application\/vnd\.oci\.image\.layer\.v1\.tar(\+gzip)?$/.test(layer.mediaType) && layer.mediaType !== MediaType.DockerLayerGzip) {
      throw new InvalidInputError(`${where}: layer media type ${layer.mediaType} is not a tar or tar+gzip`);
    }
    const blob = await getBlob(client, ref.repository, layer, { signal: o.signal });
    const res = await unpackLayer(destDir, blob, {
      mediaType: layer.mediaType,
      rootless: true,
      limits: { maxBytes: o.maxBytes ?? DEFAULT_CONTEXT_MAX_BYTES },
      signal: o.signal,
    });
    return { digest: raw.digest, entries: res.entries, bytes: res.bytes };
  } finally {
    await client.close();
  }
}
