import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import { encodeManifest, parseManifest, type ImageManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatype.js';
import type { RegistryClient } from '../registry/client.js';
import { getManifestIfExists, putManifest } from '../registry/manifests.js';
import { type AttachmentKind, attachmentTag } from '../registry/referrers.js';
import { pushSmallBlob, readSmallBlob } from './registry-io.js';

/** cosign's names for the parts of a signature image. */
export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const CERTIFICATE_ANNOTATION = 'dev.sigstore.cosign/certificate';
export const CHAIN_ANNOTATION = 'dev.sigstore.cosign/chain';
export const REKOR_BUNDLE_ANNOTATION = 'dev.sigstore.cosign/bundle';

/** One signature of a signature image: the payload it signs, the base64 signature, its annotations. */
export interface StoredSignature {
  layer: Descriptor;
  payload: Buffer;
  /** Base64 as stored in the annotation; empty when the layer has none. */
  signature: string;
  certificate?: string;
  chain?: string;
  rekorBundle?: string;
}

/**
 * Reads the signatures cosign (or we) stored for `digest` under `sha256-<hex>.sig`: each layer of
 * media type simple-signing is one signature, its payload the layer blob, its signature an
 * annotation. No tag means no signatures (an empty list, not an error).
 */
export async function readSignatures(client: RegistryClient, repo: string, digest: Digest, signal?: AbortSignal): Promise<StoredSignature[]> {
  const raw = await getManifestIfExists(client, repo, attachmentTag(digest, 'sig'), { signal });
  if (!raw) return [];
  const parsed = parseManifest(raw.bytes, raw.mediaType);
  if (parsed.kind !== 'image') return [];
  const out: StoredSignature[] = [];
  for (const layer of parsed.manifest.layers) {
    if (layer.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE) continue;
    const payload = await readSmallBlob(client, repo, layer, signal);
    const a = layer.annotations ?? {};
    const sig: StoredSignature = { layer, payload, signature: a[SIGNATURE_ANNOTATION] ?? '' };
    if (a[CERTIFICATE_ANNOTATION]) sig.certificate = a[CERTIFICATE_ANNOTATION];
    if (a[CHAIN_ANNOTATION]) sig.chain = a[CHAIN_ANNOTATION];
    if (a[REKOR_BUNDLE_ANNOTATION]) sig.rekorBundle = a[REKOR_BUNDLE_ANNOTATION];
    out.push(sig);
  }
  return out;
}

/**
 * The config of a signature or attestation image as cosign makes it (go-containerregistry's empty
 * image plus one layer per signature): the payloads' digests as diff_ids, an empty platform.
 */
export function signatureConfig(layers: Descriptor[]): Buffer {
  const zero = '0001-01-01T00:00:00Z';
  return Buffer.from(
    JSON.stringify({
      architecture: '',
      created: zero,
      history: layers.map(() => ({ created: zero })),
      os: '',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      config: {},
    }),
  );
}

/**
 * Rewrites the attachment image `sha256-<hex>.<kind>` of `digest` with `merge` applied to the layers
 * already there (none when the tag is missing): new config, then the manifest, so the tag never
 * names missing blobs. The layers' blobs must be in the repository already.
 */
export async function updateAttachment(
  client: RegistryClient,
  repo: string,
  digest: Digest,
  kind: AttachmentKind,
  merge: (layers: Descriptor[]) => Descriptor[],
  signal?: AbortSignal,
): Promise<{ tag: string; digest: Digest }> {
  const tag = attachmentTag(digest, kind);
  const existing = await getManifestIfExists(client, repo, tag, { signal });
  let layers: Descriptor[] = [];
  if (existing) {
    const parsed = parseManifest(existing.bytes, existing.mediaType);
    if (parsed.kind === 'image') layers = parsed.manifest.layers;
  }
  layers = merge(layers);
  const config = await pushSmallBlob(client, repo, signatureConfig(layers), MediaType.OciConfig, signal);
  const manifest: ImageManifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers };
  const raw = encodeManifest(manifest);
  await putManifest(client, repo, tag, raw, { signal });
  return { tag, digest: raw.digest };
}

/**
 * Adds one signature to `sha256-<hex>.sig`, keeping the signatures already there (as cosign
 * does): payload blob, new config, then the manifest, so the tag never names missing blobs.
 */
export async function appendSignature(
  client: RegistryClient,
  repo: string,
  digest: Digest,
  payload: Buffer,
  annotations: Record<string, string>,
  signal?: AbortSignal,
): Promise<Digest> {
  const layer = { ...(await pushSmallBlob(client, repo, payload, SIMPLE_SIGNING_MEDIA_TYPE, signal)), annotations };
  // The same signature again (same payload, same signature bytes) is not added twice.
  const updated = await updateAttachment(
    client,
    repo,
    digest,
    'sig',
    (layers) =>
      layers.some((l) => l.digest === layer.digest && l.annotations?.[SIGNATURE_ANNOTATION] === annotations[SIGNATURE_ANNOTATION])
        ? layers
        : [...layers, layer],
    signal,
  );
  return updated.digest;
}
