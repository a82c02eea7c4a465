/**
 * Turns an ImageMirror spec into the sync engine's inputs (SyncRepoSpec, SyncTarget, options).
 * Specs the engine cannot carry out are terminal errors (InvalidSpec) until the spec changes.
 */
import type { SyncRepoSpec } from '../copy/sync-config.js';
import type { SyncOptions, SyncTarget } from '../copy/sync.js';
import type { ImageMirrorSpec } from '../k8s/api/imagemirror.js';
import { parsePlatform } from '../oci/platform.js';
import { parseReference } from '../oci/reference.js';
import type { Credentials } from '../registry/credentials.js';
import { compileTagRegex, type TagMatcher } from '../copy/tag-filter.js';
import { errorMessage } from '../util/errors.js';
import { mirrorErrors } from './imagemirror-status.js';
import { validRange } from 'semver';

export interface RegistrySide {
  kind: 'registry';
  registry: string;
  repository: string;
  insecure: boolean;
  secret?: string;
  /** The private CA's Secret (same namespace), if any: see imagemirror-tls.ts. */
  ca?: { name: string; key?: string };
}
/** A layout on a volume the controller mounts (see imagemirror-layout.ts). */
export interface LayoutSide {
  kind: 'layout';
  claimName: string;
  path: string;
}
export type MirrorSide = RegistrySide | LayoutSide;

export interface MirrorPlan {
  source: MirrorSide;
  destination: MirrorSide;
  /** Which tags: the sync engine's selection, without the repository it applies to. */
  selection: Omit<SyncRepoSpec, 'credentials' | 'registry' | 'repository' | 'tlsVerify'>;
  options: Pick<SyncOptions, 'platforms' | 'dryRun' | 'prune' | 'keepGoing' | 'signatures' | 'compression'>;
}

const invalid = (message: string) => mirrorErrors.stalled('InvalidSpec', message);

/** For messages: `registry/repository` or `layout <claim>:<path>`. */
export function describeSide(side: MirrorSide): string {
  return side.kind === 'registry' ? `${side.registry}/${side.repository}` : `layout ${side.claimName}:${side.path}`;
}

function location(side: 'source' | 'destination', loc: ImageMirrorSpec['source']): MirrorSide {
  if (loc.layout) return { kind: 'layout', claimName: loc.layout.claimName, path: loc.layout.path ?? '/' };
  if (!loc.registry) throw invalid(`spec.${side} needs registry or layout`);
  let ref;
  try {
    ref = parseReference(loc.registry.repository);
  } catch (err) {
    throw invalid(`spec.${side}.registry.repository: ${(err as Error).message}`);
  }
  if (ref.tag || ref.digest) throw invalid(`spec.${side}.registry.repository must not have a tag or digest`);
  const ca = loc.registry.caSecretRef;
  if (ca && loc.registry.insecure) throw invalid(`spec.${side}.registry.caSecretRef and insecure contradict each other`);
  return {
    kind: 'registry',
    registry: ref.registry,
    repository: ref.repository,
    insecure: loc.registry.insecure ?? false,
    secret: loc.registry.credentials?.name,
    ...(ca ? { ca: { name: ca.name, key: ca.key ?? 'ca.crt' } } : {}),
  };
}

/** allow/deny as full-match RE2 patterns; attachment tags are left out by the engine's selection itself. */
function tagRegex(pattern: string | undefined, field: 'allow' | 'deny'): TagMatcher | undefined {
  if (pattern === undefined) return undefined;
  try {
    return compileTagRegex(pattern, `spec.tags.${field}`, { full: true });
  } catch (err) {
    throw invalid(errorMessage(err));
  }
}

function semverRange(range: string | undefined): string | undefined {
  if (range !== undefined && validRange(range) === null)
    throw invalid(`spec.tags.semver: "${range}" is not a semver range (node-semver syntax, e.g. ">=1.2.0 <2")`);
  return range;
}

export function planMirror(spec: ImageMirrorSpec): MirrorPlan {
  const source = location('source', spec.source);
  const destination = location('destination', spec.destination);
  if (source.kind === 'layout' && destination.kind === 'layout') {
    throw invalid('spec.source and spec.destination are both layouts; one side must be a registry');
  }
  if (
    source.kind === 'registry' &&
    destination.kind === 'registry' &&
    source.registry === destination.registry &&
    source.repository === destination.repository
  ) {
    throw invalid('spec.source and spec.destination are the same repository');
  }
  if (source.kind === 'layout' && spec.prune) {
    throw invalid('spec.prune is not supported with a layout source (prune works from a registry source’s tag list)');
  }
  if (source.kind === 'layout' && spec.compression) {
    throw invalid('spec.compression is not supported with a layout source (an import keeps the layout’s layers as they are)');
  }
  const t = spec.tags;
  const sel: MirrorPlan['selection'] = t?.list
    ? { tags: [...t.list] }
    : {
        tags: [],
        ...(t?.allow !== undefined ? { regex: tagRegex(t.allow, 'allow') } : {}),
        ...(t?.deny !== undefined ? { deny: tagRegex(t.deny, 'deny') } : {}),
        ...(t?.semver ? { semver: semverRange(t.semver) } : {}),
        ...(t?.newest !== undefined ? { newest: t.newest } : {}),
      };
  let platforms;
  try {
    platforms = spec.platforms?.map((p) => parsePlatform(p));
  } catch (err) {
    throw invalid(`spec.platforms: ${(err as Error).message}`);
  }
  return {
    source,
    destination,
    selection: sel,
    options: {
      platforms,
      dryRun: spec.dryRun ?? false,
      prune: spec.prune ?? false,
      keepGoing: true,
      signatures: spec.signatures === 'remove' ? 'remove' : 'copy',
      ...(spec.compression ? { compression: spec.compression } : {}),
    },
  };
}

/** TLS of a registry side: insecure, or verified (always, loopback included) against a private CA in `certDir`, or the default. */
function tlsOf(side: RegistrySide, certDir: string | undefined): { tlsVerify?: boolean; certDir?: string } {
  if (side.insecure) return { tlsVerify: false };
  return certDir ? { tlsVerify: true, certDir } : {};
}

/** The engine's source spec for a registry source (certDir: the mirror's CA directory, imagemirror-tls.ts). */
export function syncSpec(source: RegistrySide, selection: MirrorPlan['selection'], credentials: Credentials | undefined, certDir?: string): SyncRepoSpec {
  return { registry: source.registry, repository: source.repository, ...tlsOf(source, certDir), ...selection, ...(credentials ? { credentials } : {}) };
}

export const registryContext = (side: RegistrySide, credentials: Credentials | undefined, certDir?: string) => ({ ...tlsOf(side, certDir), credentials });

/** A registry destination, or the directory a layout destination resolved to (layouts go to <dir>/<source repository>). */
export function syncTarget(destination: RegistrySide | { kind: 'layout'; dir: string }, credentials: Credentials | undefined, certDir?: string): SyncTarget {
  if (destination.kind === 'layout') return { kind: 'layout', dir: destination.dir };
  return {
    kind: 'registry',
    registry: destination.registry,
    prefix: '',
    repository: destination.repository,
    context: registryContext(destination, credentials, certDir),
  };
}
