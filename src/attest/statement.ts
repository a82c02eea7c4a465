import { digestHex, parseDigest, type Digest } from '../oci/digest.js';
import { InvalidInputError } from '../util/errors.js';
import { AttestationError } from './dsse.js';

/** in-toto attestation framework, Statement layer v1. */
export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
/** Statements of v0.1 are still what older tools write; accepted on read. */
const STATEMENT_TYPES_READ = new Set([STATEMENT_TYPE, 'https://in-toto.io/Statement/v0.1']);

export interface ResourceDescriptor {
  name?: string;
  uri?: string;
  digest?: Record<string, string>;
  annotations?: Record<string, unknown>;
}

export interface Statement<P = unknown> {
  _type: string;
  subject: { name: string; digest: Record<string, string> }[];
  predicateType: string;
  predicate: P;
}

/** Predicate types by the short names cosign's `--type` uses (and ours). */
export const PREDICATE_TYPES: Record<string, string> = {
  spdx: 'https://spdx.dev/Document',
  spdxjson: 'https://spdx.dev/Document',
  'spdx-json': 'https://spdx.dev/Document',
  cyclonedx: 'https://cyclonedx.org/bom',
  'cyclonedx-json': 'https://cyclonedx.org/bom',
  slsaprovenance: 'https://slsa.dev/provenance/v1',
  slsaprovenance1: 'https://slsa.dev/provenance/v1',
  slsaprovenance02: 'https://slsa.dev/provenance/v0.2',
  vuln: 'https://cosign.sigstore.dev/attestation/vuln/v1',
  custom: 'https://cosign.sigstore.dev/attestation/v1',
};

/** A `--type` value (short name or a predicate type URI) as a predicate type URI. */
export function predicateTypeFor(type: string): string {
  const known = PREDICATE_TYPES[type.toLowerCase()];
  if (known) return known;
  if (/^https?:\/\//.test(type)) return type;
  throw new InvalidInputError(`unknown attestation type "${type}": use one of ${Object.keys(PREDICATE_TYPES).join(', ')} or a predicate type URI`);
}

/** The statement's subject for an image: its repository name and manifest digest. */
export function imageSubject(name: string, digest: Digest): Statement['subject'][number] {
  const { algorithm, encoded } = parseDigest(digest);
  return { name, digest: { [algorithm]: encoded } };
}

export function makeStatement<P>(subject: { name: string; digest: Digest }, predicateType: string, predicate: P): Statement<P> {
  if (typeof predicate !== 'object' || predicate === null || Array.isArray(predicate)) {
    throw new InvalidInputError('an attestation predicate must be a JSON object');
  }
  return { _type: STATEMENT_TYPE, subject: [imageSubject(subject.name, subject.digest)], predicateType, predicate };
}

/** Parses and checks a statement's shape (type, subjects with digests, predicate type). */
export function parseStatement(payload: Buffer): Statement {
  let doc: unknown;
  try {
    doc = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new AttestationError('attestation payload is not JSON');
  }
  const s = doc as Partial<Statement>;
  if (typeof s !== 'object' || s === null || !STATEMENT_TYPES_READ.has(String(s._type))) {
    throw new AttestationError(`attestation payload is not an in-toto statement (_type ${JSON.stringify((s as { _type?: unknown })?._type)})`);
  }
  if (!Array.isArray(s.subject) || s.subject.length === 0) throw new AttestationError('in-toto statement has no subject');
  for (const sub of s.subject) {
    if (typeof sub !== 'object' || sub === null || typeof sub.digest !== 'object' || sub.digest === null)
      throw new AttestationError('in-toto statement has a subject without a digest');
  }
  if (typeof s.predicateType !== 'string' || s.predicateType === '') throw new AttestationError('in-toto statement has no predicateType');
  return s as Statement;
}

/** True when one of the statement's subjects names this digest. */
export function statementCovers(statement: Statement, digest: Digest): boolean {
  const { algorithm } = parseDigest(digest);
  const hex = digestHex(digest);
  return statement.subject.some((s) => s.digest[algorithm]?.toLowerCase() === hex);
}
