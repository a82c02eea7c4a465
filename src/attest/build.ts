import type { KeyObject } from 'node:crypto';
import type { Digest } from '../oci/digest.js';
import type { SbomFormat } from '../sbom/index.js';
import { formatReference, referenceName } from '../oci/reference.js';
import { DockerReference } from '../transports/docker.js';
import { parseImageName } from '../transports/index.js';
import type { TransportContext } from '../transports/types.js';
import { InvalidInputError } from '../util/errors.js';
import { attachProvenance, attachSbom, type AttachResult } from './attach.js';
import { provenanceStatement, type ProvenanceInput } from './provenance.js';

/** One attached attestation, as a build result or an ImageBuild status lists it. */
export interface AttachmentSummary {
  kind: 'sbom' | 'provenance';
  predicateType: string;
  /** The image manifest the attestation is about. */
  subject: Digest;
  /** The referrer manifest (OCI 1.1 artifact), when written. */
  referrer?: Digest;
  /** The DSSE envelope blob. */
  envelope: Digest;
}

export interface BuildAttestationOptions {
  key: KeyObject | string;
  password?: string;
  ctx?: TransportContext;
  /** Attach an SBOM in this format (default spdx-json); false for none. */
  sbom?: SbomFormat | false;
  /** Attach SLSA v1 provenance with these facts (the subject is the pushed image); omit for none. */
  provenance?: Omit<ProvenanceInput, 'subject'>;
  /** For an index: the platform whose image the SBOM describes (default: the host's). */
  platform?: string;
  signal?: AbortSignal;
}

function summary(kind: AttachmentSummary['kind'], r: AttachResult): AttachmentSummary {
  return { kind, predicateType: r.predicateType, subject: r.subject.digest, referrer: r.referrer?.digest, envelope: r.envelope };
}

/**
 * What `stevedore build --sbom` and the ImageBuild controller call after pushing `image` (a
 * `docker://` reference) whose manifest digest is `digest`: the SBOM and/or SLSA provenance, signed
 * and attached. Returns one short summary per attestation (a few hundred bytes, so it fits a
 * build result file and the termination message).
 */
export async function attachBuildAttestations(image: string, digest: Digest, opts: BuildAttestationOptions): Promise<AttachmentSummary[]> {
  const out: AttachmentSummary[] = [];
  const parsed = parseImageName(image);
  if (!(parsed instanceof DockerReference)) throw new InvalidInputError(`attestations are stored in a registry: ${image} is not a docker:// image`);
  // Pin the reference to the pushed digest: a tag may move while we work.
  const ref = `docker://${formatReference({ registry: parsed.ref.registry, repository: parsed.ref.repository, digest })}`;
  const name = referenceName(parsed.ref);
  const common = { key: opts.key, password: opts.password, ctx: opts.ctx, signal: opts.signal };
  if (opts.sbom !== false) {
    out.push(summary('sbom', await attachSbom(ref, { ...common, format: opts.sbom ?? 'spdx-json', platform: opts.platform })));
  }
  if (opts.provenance) {
    const statement = provenanceStatement({ ...opts.provenance, subject: { name, digest } });
    out.push(summary('provenance', await attachProvenance(ref, statement, common)));
  }
  return out;
}
