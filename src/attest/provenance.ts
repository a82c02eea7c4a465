import type { Digest } from '../oci/digest.js';
import { InvalidInputError } from '../util/errors.js';
import { makeStatement, type ResourceDescriptor, type Statement } from './statement.js';

/** SLSA Provenance v1 (slsa.dev/spec/v1.0/provenance). */
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
/** What `buildType` means: the external parameters below are those of a Stevedore Containerfile build. */
export const STEVEDORE_BUILD_TYPE = 'https://stevedore.dev/build/containerfile/v1';
export const DEFAULT_BUILDER_ID = 'https://stevedore.dev/builder';

export interface ProvenanceInput {
  /** The image built: repository name and manifest (or index) digest. */
  subject: { name: string; digest: Digest };
  /** Where the build context came from, e.g. `git+https://github.com/org/app@refs/heads/main`, or a directory. */
  source?: { uri: string; commit?: string; digest?: Record<string, string> };
  containerfile: { path: string; digest: Digest };
  buildArgs?: Record<string, string>;
  target?: string;
  platforms?: string[];
  labels?: Record<string, string>;
  /** Base images and other inputs fetched during the build. */
  dependencies?: ResourceDescriptor[];
  builder: { id?: string; version: string; extra?: Record<string, string> };
  /** e.g. the ImageBuild's namespace/name/uid and generation, or a CI run id. */
  invocationId?: string;
  startedOn?: Date;
  finishedOn?: Date;
  /** Build outputs besides the image (SBOM, cache manifests). */
  byproducts?: ResourceDescriptor[];
}

export interface SlsaProvenanceV1 {
  buildDefinition: {
    buildType: string;
    externalParameters: Record<string, unknown>;
    internalParameters?: Record<string, unknown>;
    resolvedDependencies?: ResourceDescriptor[];
  };
  runDetails: {
    builder: { id: string; version?: Record<string, string> };
    metadata?: { invocationId?: string; startedOn?: string; finishedOn?: string };
    byproducts?: ResourceDescriptor[];
  };
}

function digestMap(d: Digest): Record<string, string> {
  const i = d.indexOf(':');
  return { [d.slice(0, i)]: d.slice(i + 1) };
}

/**
 * A SLSA v1 provenance statement for a Containerfile build, for the builder (`stevedore build`)
 * and the ImageBuild controller to attach with `attachProvenance`. External parameters are what
 * the user chose (source, Containerfile, build args, target, platforms); resolved dependencies pin
 * the source commit, the Containerfile's digest and any base images; the builder id carries the
 * Stevedore version.
 */
export function provenanceStatement(input: ProvenanceInput): Statement<SlsaProvenanceV1> {
  if (!input.containerfile?.path || !input.containerfile.digest) throw new InvalidInputError('provenance needs the Containerfile path and digest');
  if (!input.builder?.version) throw new InvalidInputError('provenance needs the builder version');
  const source: Record<string, unknown> | undefined = input.source
    ? {
        uri: input.source.uri,
        ...(input.source.commit ? { digest: { gitCommit: input.source.commit } } : input.source.digest ? { digest: input.source.digest } : {}),
      }
    : undefined;
  const externalParameters: Record<string, unknown> = {
    ...(source ? { source } : {}),
    containerfile: { path: input.containerfile.path, digest: digestMap(input.containerfile.digest) },
    buildArgs: input.buildArgs ?? {},
    ...(input.target ? { target: input.target } : {}),
    ...(input.platforms?.length ? { platforms: input.platforms } : {}),
    ...(input.labels && Object.keys(input.labels).length ? { labels: input.labels } : {}),
  };
  const resolved: ResourceDescriptor[] = [];
  if (input.source) {
    resolved.push({
      uri: input.source.uri,
      ...(input.source.commit ? { digest: { gitCommit: input.source.commit } } : input.source.digest ? { digest: input.source.digest } : {}),
    });
  }
  resolved.push({ name: input.containerfile.path, digest: digestMap(input.containerfile.digest) });
  resolved.push(...(input.dependencies ?? []));
  const builderId = input.builder.id ?? `${DEFAULT_BUILDER_ID}@v${input.builder.version.replace(/^v/, '')}`;
  const metadata: NonNullable<SlsaProvenanceV1['runDetails']['metadata']> = {};
  if (input.invocationId) metadata.invocationId = input.invocationId;
  if (input.startedOn) metadata.startedOn = input.startedOn.toISOString();
  if (input.finishedOn) metadata.finishedOn = input.finishedOn.toISOString();
  const predicate: SlsaProvenanceV1 = {
    buildDefinition: { buildType: STEVEDORE_BUILD_TYPE, externalParameters, resolvedDependencies: resolved },
    runDetails: {
      builder: { id: builderId, version: { stevedore: input.builder.version, ...(input.builder.extra ?? {}) } },
      ...(Object.keys(metadata).length ? { metadata } : {}),
      ...(input.byproducts?.length ? { byproducts: input.byproducts } : {}),
    },
  };
  return makeStatement(input.subject, SLSA_PROVENANCE_V1, predicate);
}
