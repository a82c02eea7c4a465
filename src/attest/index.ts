/**
 * Attestations: in-toto statements (SBOMs, SLSA provenance) signed as DSSE envelopes and attached
 * to images as OCI 1.1 referrers (with the `sha256-<hex>` fallback tag) and cosign `.att` tags.
 */
export {
  attachProvenance,
  attachSbom,
  attachStatement,
  ATTESTATION_ARTIFACT_TYPE,
  PREDICATE_TYPE_ANNOTATION,
  type AttachOptions,
  type AttachResult,
  type AttachSbomOptions,
  type AttachedSubject,
} from './attach.js';
export { AttestationError, DSSE_MEDIA_TYPE, IN_TOTO_PAYLOAD_TYPE, pae, parseEnvelope, signEnvelope, verifyEnvelope, type DsseEnvelope } from './dsse.js';
export { loadSigningKey, loadVerifyKey } from './keys.js';
export { provenanceStatement, SLSA_PROVENANCE_V1, STEVEDORE_BUILD_TYPE, type ProvenanceInput, type SlsaProvenanceV1 } from './provenance.js';
export { makeStatement, parseStatement, predicateTypeFor, PREDICATE_TYPES, STATEMENT_TYPE, type Statement } from './statement.js';
export { verifyAttestations, type VerifyOptions, type VerifyResult, type VerifiedAttestation, type RejectedAttestation } from './verify.js';
export { attachBuildAttestations, type AttachmentSummary, type BuildAttestationOptions } from './build.js';
