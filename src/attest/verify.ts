import type { KeyObject } from 'node:crypto';
import type { Descriptor } from '../oci/descriptor.js';
import { digestHex, type Digest } from '../oci/digest.js';
import { parseManifest } from '../oci/manifest.js';
import { referenceName, referenceTarget } from '../oci/reference.js';
import { getBlob } from '../registry/blobs.js';
import type { RegistryClient } from '../registry/client.js';
import { getManifest, headManifest } from '../registry/manifests.js';
import { listReferrers } from '../registry/referrers.js';
import { DockerReference, registryClientFor } from '../transports/docker.js';
import { parseImageName } from '../transports/index.js';
import type { TransportContext } from '../transports/types.js';
import { errorMessage, InvalidInputError, NotFoundError } from '../util/errors.js';
import { streamToBuffer } from '../util/streams.js';
import { ATTESTATION_ARTIFACT_TYPE } from './referrer.js';
import { AttestationError, DSSE_MEDIA_TYPE, IN_TOTO_PAYLOAD_TYPE, parseEnvelope, verifyEnvelope } from './dsse.js';
import { loadVerifyKey } from './keys.js';
import { parseStatement, statementCovers, type Statement } from './statement.js';

/** SBOMs of big images run to tens of MiB; an envelope beyond this is refused, not buffered. */
const MAX_ENVELOPE_BYTES = 128 * 1024 * 1024;

export interface FoundAttestation {
  /** Where it was found: an OCI 1.1 referrer, or a layer of cosign's `.att` tag. */
  source: 'referrer' | 'cosign-tag';
  /** The referrer manifest, or the `.att` manifest. */
  manifest: Digest;
  envelope?: Digest;
}

export interface VerifiedAttestation extends FoundAttestation {
  statement: Statement;
}

export interface RejectedAttestation extends FoundAttestation {
  reason: string;
}

export interface VerifyResult {
  image: { name: string; digest: Digest };
  verified: VerifiedAttestation[];
  rejected: RejectedAttestation[];
}

export interface VerifyOptions {
  key: KeyObject | string;
  /** Only attestations of this predicate type count (others are neither verified nor rejected). */
  predicateType?: string;
  ctx?: TransportContext;
  signal?: AbortSignal;
}

async function readEnvelope(client: RegistryClient, repo: string, layer: Descriptor, signal?: AbortSignal): Promise<Buffer> {
  if (layer.mediaType !== DSSE_MEDIA_TYPE) throw new AttestationError(`layer ${layer.digest} is ${layer.mediaType}, not a DSSE envelope`);
  if (layer.size > MAX_ENVELOPE_BYTES) throw new AttestationError(`envelope ${layer.digest} is ${layer.size} bytes, over the ${MAX_ENVELOPE_BYTES}-byte limit`);
  return streamToBuffer(await getBlob(client, repo, layer, { signal }), MAX_ENVELOPE_BYTES, `envelope ${layer.digest}`);
}

/**
 * Finds the attestations attached to an image (OCI 1.1 referrers, through the API or the fallback
 * tag, and cosign's `.att` tag) and checks each one: the referrer's `subject` is this image, the
 * DSSE signature verifies with `key`, the payload is an in-toto statement whose subject names this
 * image's digest. Each failure is kept with its reason; nothing is trusted that did not pass.
 */
export async function verifyAttestations(image: string, opts: VerifyOptions): Promise<VerifyResult> {
  const parsed = parseImageName(image);
  if (!(parsed instanceof DockerReference)) throw new InvalidInputError(`attestations are read from a registry: ${image} is not a docker:// image`);
  const ref = parsed.ref;
  const key = await loadVerifyKey(opts.key);
  const client = registryClientFor(ref, opts.ctx);
  const repo = ref.repository;
  const signal = opts.signal;
  try {
    const head = await headManifest(client, repo, referenceTarget(ref), { signal });
    if (!head) throw new NotFoundError(`${referenceName(ref)}:${referenceTarget(ref)}: image not found, so nothing can be verified`);
    const digest = head.digest;
    const result: VerifyResult = { image: { name: referenceName(ref), digest }, verified: [], rejected: [] };

    const check = async (found: FoundAttestation, layer: Descriptor): Promise<void> => {
      try {
        const env = parseEnvelope(await readEnvelope(client, repo, layer, signal));
        const payload = verifyEnvelope(env, key, { payloadType: IN_TOTO_PAYLOAD_TYPE });
        const statement = parseStatement(payload);
        if (opts.predicateType && statement.predicateType !== opts.predicateType) return;
        if (!statementCovers(statement, digest)) {
          const names = statement.subject
            .map((s) =>
              Object.entries(s.digest)
                .map(([a, h]) => `${a}:${h}`)
                .join(','),
            )
            .join(' ');
          throw new AttestationError(`statement is about ${names}, not this image (${digest})`);
        }
        result.verified.push({ ...found, statement });
      } catch (err) {
        result.rejected.push({ ...found, reason: errorMessage(err) });
      }
    };

    const { manifests } = await listReferrers(client, repo, digest, { artifactType: ATTESTATION_ARTIFACT_TYPE, signal });
    for (const desc of manifests) {
      const found: FoundAttestation = { source: 'referrer', manifest: desc.digest };
      try {
        const raw = await getManifest(client, repo, desc.digest, { signal });
        const m = parseManifest(raw.bytes, raw.mediaType);
        if (m.kind !== 'image') throw new AttestationError('referrer is an index, not an attestation manifest');
        const subject = m.manifest.subject?.digest;
        if (subject !== digest) {
          // A fallback index can be written by anyone with push access: its entries prove nothing.
          throw new AttestationError(subject ? `referrer names subject ${subject}, not this image (${digest})` : 'referrer manifest has no subject');
        }
        const layer = m.manifest.layers[0];
        if (!layer) throw new AttestationError('referrer manifest has no layers');
        await check({ ...found, envelope: layer.digest }, layer);
      } catch (err) {
        result.rejected.push({ ...found, reason: errorMessage(err) });
      }
    }

    const attTag = `sha256-${digestHex(digest)}.att`;
    try {
      const raw = await getManifest(client, repo, attTag, { signal });
      const m = parseManifest(raw.bytes, raw.mediaType);
      if (m.kind === 'image') {
        for (const layer of m.manifest.layers) {
          await check({ source: 'cosign-tag', manifest: raw.digest, envelope: layer.digest }, layer);
        }
      }
    } catch (err) {
      if ((err as { code?: string }).code !== 'NOT_FOUND') throw err;
    }
    return result;
  } finally {
    await client.close();
  }
}
