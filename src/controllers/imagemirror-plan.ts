/**
 * Turns an ImageMirror spec into the sync engine's inputs (SyncRepoSpec, SyncTarget, options).
 * Specs the engine cannot carry out are terminal errors (InvalidSpec) until the spec changes.
 */
import type { SyncRepoSpec } from '../copy/sync-config.js';
import type { SyncOptions, SyncTarget } from '../copy/sync.js';
import type { ImageMirrorSpec } from '../k8s/api/imagemirror.js';
import { StallingError } from '../k8s/runtime/errors.js';
import { parsePlatform } from '../oci/platform.js';
import { parseReference } from '../oci/reference.js';
import type { Credentials } from '../registry/credentials.js';

export interface MirrorPlan {
  source: { registry: string; repository: string; insecure: boolean; secret?: string };
  destination: { registry: string; repository: string; insecure: boolean; secret?: string };
  spec: Omit<SyncRepoSpec, 'credentials'>;
  options: Pick<SyncOptions, 'platforms' | 'dryRun' | 'prune' | 'keepGoing' | 'signatures'>;
}

const invalid = (message: string) => new StallingError('InvalidSpec', message);

function repo(side: 'source' | 'destination', loc: ImageMirrorSpec['source']) {
  if (!loc.registry) throw invalid(`spec.${side}.layout is not supported by this controller yet; use spec.${side}.registry`);
  let ref;
  try {
    ref = parseReference(loc.registry.repository);
  } catch (err) {
    throw invalid(`spec.${side}.registry.repository: ${(err as Error).message}`);
  }
  if (ref.tag || ref.digest) throw invalid(`spec.${side}.registry.repository must not have a tag or digest`);
  return { registry: ref.registry, repository: ref.repository, insecure: loc.registry.insecure ?? false, secret: loc.registry.credentials?.name };
}

/**
 * Tags that hold an image's attachments, not an image: cosign's `sha256-<hex>.sig/.att/.sbom` and
 * the OCI referrers tag fallback `sha256-<hex>`. They travel with their image (spec.signatures);
 * selecting them as tags would copy signatures that `remove` must leave behind, and would put each
 * through the policy as if it were an image.
 */
const ATTACHMENT_TAG = 'sha256-[a-f0-9]{64}(?:\\.(?:sig|att|sbom))?';

/** A regex for allow/deny as full matches (the API's RE2 subset is valid JavaScript syntax). */
function tagRegex(allow: string | undefined, deny: string | undefined): RegExp {
  const denied = deny ? `${ATTACHMENT_TAG}|(?:${deny})` : ATTACHMENT_TAG;
  try {
    return new RegExp(`^(?!(?:${denied})$)(?:${allow ?? '.*'})$`);
  } catch (err) {
    throw invalid(`spec.tags: ${(err as Error).message}`);
  }
}

export function planMirror(spec: ImageMirrorSpec): MirrorPlan {
  const source = repo('source', spec.source);
  const destination = repo('destination', spec.destination);
  if (source.registry === destination.registry && source.repository === destination.repository) {
    throw invalid('spec.source and spec.destination are the same repository');
  }
  const t = spec.tags;
  const sel: Omit<SyncRepoSpec, 'credentials' | 'registry' | 'repository'> = t?.list
    ? { tags: [...t.list] }
    : {
        tags: [],
        regex: tagRegex(t?.allow, t?.deny),
        ...(t?.semver ? { semver: t.semver } : {}),
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
    spec: { registry: source.registry, repository: source.repository, tlsVerify: source.insecure ? false : undefined, ...sel },
    options: {
      platforms,
      dryRun: spec.dryRun ?? false,
      prune: spec.prune ?? false,
      keepGoing: true,
      signatures: spec.signatures === 'remove' ? 'remove' : 'copy',
    },
  };
}

export function syncTarget(plan: MirrorPlan, credentials: Credentials | undefined): SyncTarget {
  return {
    kind: 'registry',
    registry: plan.destination.registry,
    prefix: '',
    repository: plan.destination.repository,
    context: { tlsVerify: plan.destination.insecure ? false : undefined, credentials },
  };
}
