import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Digest } from '../oci/digest.js';
import { isDigest } from '../oci/digest.js';
import { OciLayout } from '../oci/layout.js';
import { formatReference, referenceTarget, type ImageReference } from '../oci/reference.js';
import type { RegistryClient } from '../registry/client.js';
import { deleteManifest, getManifest, headManifest } from '../registry/manifests.js';
import { listTags } from '../registry/tags.js';
import { DockerReference, RegistryClients } from '../transports/docker.js';
import { parseOciReference } from '../transports/oci.js';
import type { ImageDestination, ImageSource, TransportContext, TransportReference } from '../transports/types.js';
import { DirReference } from '../transports/dir.js';
import { errorMessage, InvalidInputError, NotFoundError, StevedoreError } from '../util/errors.js';
import { rootLogger } from '../util/log.js';
import { mapLimit } from '../util/pool.js';
import { isIndexMediaType } from '../oci/mediatype.js';
import { parseManifest, type RawManifest } from '../oci/manifest.js';
import type { Platform } from '../oci/platform.js';
import type { Policy } from '../policy/types.js';
import {
  CONVERTED_COMPRESSION_ANNOTATION,
  copyBetween,
  enforcePolicy,
  SUBSET_PLATFORMS_ANNOTATION,
  SUBSET_SOURCE_ANNOTATION,
  subsetPlatforms,
  type CopyOptions,
} from './copy.js';
import { newestByCreation } from './newest.js';
import type { SyncRepoSpec } from './sync-config.js';

/**
 * How a source repository is named at the destination, under the prefix or directory: `path`, the
 * whole repository path (`team/app`, the engine's default and the ImageMirror layout rule); `last`,
 * its last element (`app`, skopeo sync's default); `scoped`, registry and path
 * (`registry.example.com/team/app`, skopeo's --scoped).
 */
export type SyncNaming = 'path' | 'last' | 'scoped';

/** Where a sync writes: a registry under an optional path prefix, one OCI layout per repository, or one `dir:` directory per image. */
export type SyncTarget =
  | {
      kind: 'registry';
      registry: string;
      /** Path put before each source repository (`prefix/team/app`); ignored when `repository` is set. */
      prefix: string;
      /** Write to exactly this repository (a rename); only meaningful with a single source repository. */
      repository?: string;
      context?: TransportContext;
      naming?: SyncNaming;
    }
  | { kind: 'layout'; dir: string; naming?: SyncNaming }
  /** skopeo's `--dest dir`: `<dir>/<name>:<tag>`, a `dir:` image per tag (always copied: a directory keeps no digest to compare). */
  | { kind: 'dir'; dir: string; naming?: SyncNaming };

/** The destination name of a source repository under the target's naming rule. */
export function destinationName(naming: SyncNaming | undefined, registry: string, repository: string): string {
  if (naming === 'last') return repository.slice(repository.lastIndexOf('/') + 1);
  if (naming === 'scoped') return `${registry}/${repository}`;
  return repository;
}

export type SyncAction = 'copied' | 'skipped' | 'failed' | 'would-copy' | 'pruned' | 'would-prune';

export interface SyncItem {
  source: string;
  destination: string;
  tag: string;
  action: SyncAction;
  digest?: Digest;
  error?: string;
  /** Why a tag was left as it is when that is not the usual reason (e.g. prune keeping a shared digest). */
  note?: string;
  /** Blob bytes this image's copy wrote at the destination (a copied item; 0 for a tag that only re-tagged). */
  bytes?: number;
}

export interface SyncReport {
  items: SyncItem[];
  copied: number;
  skipped: number;
  failed: number;
  pruned: number;
  /** Dry run: images that would be copied and tags that would be pruned. */
  wouldCopy: number;
  wouldPrune: number;
}

/** An empty report, counted by recordItem. */
export function emptyReport(): SyncReport {
  return { items: [], copied: 0, skipped: 0, failed: 0, pruned: 0, wouldCopy: 0, wouldPrune: 0 };
}

/** Adds an item to a report and counts it. */
export function recordItem(report: SyncReport, item: SyncItem): void {
  report.items.push(item);
  if (item.action === 'copied') report.copied++;
  else if (item.action === 'skipped') report.skipped++;
  else if (item.action === 'failed') report.failed++;
  else if (item.action === 'pruned') report.pruned++;
  else if (item.action === 'would-copy') report.wouldCopy++;
  else if (item.action === 'would-prune') report.wouldPrune++;
}

export interface SyncOptions
  extends Pick<CopyOptions, 'platforms' | 'preserveDigests' | 'format' | 'jobs' | 'signal' | 'onProgress' | 'retry' | 'compression' | 'compressionLevel'> {
  /** Go on after a failed image and report it (default: stop at the first failure). */
  keepGoing?: boolean;
  /** Work out and report what would change, copying and deleting nothing. */
  dryRun?: boolean;
  /** Delete destination tags that the source selection no longer has. */
  prune?: boolean;
  /** Images synced in parallel. */
  parallelImages?: number;
  /** Called as each image finishes, for live reporting. */
  onItem?: (item: SyncItem) => void;
  /** Per-registry context overrides for sources (credentials, TLS) beyond what the spec carries. */
  sourceContext?: TransportContext;
  /** containers-policy.json every copied image must satisfy; a refused image fails (nothing of it is written). */
  policy?: Policy;
  /** Carry cosign signatures, attestations, SBOMs and referrers of copied images (default), or leave them behind. */
  signatures?: 'copy' | 'remove';
}

/**
 * Tags that share a digest (`latest` = `1.2.3` = `1.2`) are written once, in sync and in
 * syncFromLayout: the first tag of a key copies the image, the others wait for that copy and only
 * put its manifest under their own tag. Pushed together, the same index raced its own children and
 * distribution refused one PUT (DIGEST_INVALID). A failed copy is its own tag's failure; a tag
 * that waited on it then copies on its own (and does not take the lead).
 */
export class SharedDigestWrites {
  readonly #leaders = new Map<string, Promise<RawManifest>>();

  /**
   * The manifest written into `dest` for the image `key` names (the destination and the digest):
   * by `copy` if no earlier tag wrote it, else by tagging what that tag's copy wrote.
   */
  async write(key: string, dest: ImageDestination, signal: AbortSignal | undefined, copy: () => Promise<RawManifest>): Promise<RawManifest> {
    const lead = this.#leaders.get(key);
    const written = lead ? await lead.catch(() => undefined) : undefined;
    if (written) {
      await dest.putManifest(written, { top: true, signal });
      await dest.commit({ signal });
      return written;
    }
    const copying = copy();
    copying.catch(() => undefined);
    if (!lead) this.#leaders.set(key, copying);
    return copying;
  }
}

/**
 * Images checked and copied at once. Checking an unchanged tag is two HEAD requests whose cost is
 * the registries' own (a few ms of their CPU each), so overlap is what makes a large sync fast.
 */
export const DEFAULT_PARALLEL_IMAGES = 16;

/** semver (CommonJS, ~20 ms to load) is needed only by `images-by-semver` specs: loaded on first use. */
let semverLib: typeof import('semver') | undefined;
const semver = (): typeof import('semver') => (semverLib ??= createRequire(import.meta.url)('semver') as typeof import('semver'));

/**
 * Tags of a repository selected by a spec: explicit tags, a regex, a semver range, or all; with
 * `newest` and `semver`, the N highest versions. `newest` without `semver` orders by creation time,
 * which needs the images: that is chooseTags' part (selectTags leaves such a selection unranked).
 * Attachment tags (cosign's `.sig`/`.att`/`.sbom`, the referrers fallback) are never images: a
 * filter never selects them, they travel with the image they belong to.
 */
export function selectTags(spec: SyncRepoSpec, available: string[]): string[] {
  let tags = available.filter((t) => attachmentSubject(t) === undefined);
  if (spec.regex) tags = tags.filter((t) => spec.regex!.test(t));
  if (spec.deny) tags = tags.filter((t) => !spec.deny!.test(t));
  if (spec.semver) {
    const { rcompare, satisfies } = semver();
    const versions = new Map<string, string>();
    for (const t of tags) {
      const v = semverOf(t);
      if (v && (!spec.semver || satisfies(v, spec.semver))) versions.set(t, v);
    }
    tags = tags.filter((t) => versions.has(t));
    if (spec.newest !== undefined) {
      tags = [...tags].sort((a, b) => rcompare(versions.get(a)!, versions.get(b)!)).slice(0, spec.newest);
    }
  }
  return tags;
}

/**
 * selectTags, then for `newest` without `semver` the N tags whose images were created last
 * (`open` gives a source for a tag; a HEAD per tag, the config read once per digest).
 */
export async function chooseTags(
  spec: SyncRepoSpec,
  available: string[],
  open: (tag: string) => Promise<ImageSource>,
  opts: { signal?: AbortSignal } = {},
): Promise<string[]> {
  const tags = selectTags(spec, available);
  if (spec.newest === undefined || spec.semver) return tags;
  return newestByCreation(tags, spec.newest, open, opts);
}

/** A tag read as a version: strict semver, or a `v1`, `1.2`, `v1.2.3`-style tag coerced to one. */
function semverOf(tag: string): string | null {
  const { coerce, valid } = semver();
  return valid(tag) ?? (/^v?\d+(\.\d+){0,2}$/.test(tag) ? (coerce(tag)?.version ?? null) : null);
}

/** What a layout's ref names now, without creating the layout (for dry runs); undefined if none. */
async function layoutDigest(dir: string, refName: string | undefined): Promise<Digest | undefined> {
  try {
    return (await (await OciLayout.open(dir)).resolve(refName)).digest;
  } catch {
    return undefined;
  }
}

function destinationRepository(target: SyncTarget, registry: string, repository: string): string {
  if (target.kind !== 'registry') return destinationName(target.naming, registry, repository);
  if (target.repository) return target.repository;
  const name = destinationName(target.naming, registry, repository);
  return target.prefix ? `${target.prefix.replace(/\/+$/, '')}/${name}` : name;
}

/**
 * Mirrors tag sets from registries to a registry or to OCI layouts, as `skopeo sync` does, but
 * cheaper where it matters: an image whose source digest (from a HEAD request, which spends no
 * Docker Hub pull) equals the destination's is skipped without reading its manifest or blobs.
 * Index digests are preserved (every platform is copied) unless platforms are chosen.
 */
export async function sync(specs: SyncRepoSpec[], target: SyncTarget, opts: SyncOptions = {}): Promise<SyncReport> {
  if (opts.prune && target.kind === 'dir')
    throw new InvalidInputError('prune is not supported with a dir: destination (a directory per image keeps no tag list)');
  const report = emptyReport();
  // One client per registry for the whole sync (connections and tokens reused across images):
  // every source and destination is opened through its transport with the pool in its context.
  const pool = new RegistryClients();
  const log = rootLogger.child({ op: 'sync' });
  const record = (item: SyncItem) => {
    recordItem(report, item);
    opts.onItem?.(item);
  };
  let stop: unknown;
  // Prune works per destination repository over *all* specs naming it: two selections of one
  // repository (say `images` and `images-by-semver`) must not prune each other's tags.
  const pruneSets = new Map<string, PruneSet>();
  /** Keyed by destination repository and source digest: tags sharing a digest copy it once. */
  const sharedDigests = new SharedDigestWrites();
  try {
    for (const spec of specs) {
      if (stop || opts.signal?.aborted) break;
      const srcCtx: TransportContext = { ...(opts.sourceContext ?? {}) };
      if (spec.credentials) srcCtx.credentials = spec.credentials;
      if (spec.tlsVerify !== undefined) srcCtx.tlsVerify = spec.tlsVerify;
      if (spec.certDir !== undefined) srcCtx.certDir = spec.certDir;
      srcCtx.clients = pool;
      const srcRepo = { registry: spec.registry, repository: spec.repository };
      const srcClient = pool.client(srcRepo, srcCtx);
      const destCtx: TransportContext = { ...(target.kind === 'registry' ? (target.context ?? {}) : {}), clients: pool };
      const destRepo = destinationRepository(target, spec.registry, spec.repository);
      const destClient = target.kind === 'registry' ? pool.client({ registry: target.registry, repository: destRepo }, destCtx) : undefined;
      // Both registries are pinged (scheme, auth challenge) at once, before the tag list is read:
      // otherwise the destination's ping waited for the source's ping and tag list, a serial round
      // trip or two of every sync. A failed ping is reported by the first request that needs it.
      for (const c of [srcClient, destClient]) c?.warmUp(opts.signal);
      const pruneKey = target.kind === 'registry' ? destRepo : join(target.dir, destRepo);
      let ps = pruneSets.get(pruneKey);
      if (!ps) pruneSets.set(pruneKey, (ps = { spec, destRepo, destClient, selected: new Set(), kept: new Map(), unknown: false }));
      let tags: string[];
      try {
        tags =
          spec.tags.length > 0 && !spec.regex && !spec.deny && !spec.semver && spec.newest === undefined
            ? spec.tags
            : await chooseTags(
                spec,
                await listTags(srcClient, spec.repository, opts),
                (tag) => new DockerReference({ ...srcRepo, tag }).newSource(srcCtx),
                opts,
              );
      } catch (err) {
        // The selection is unknown: pruning this repository could delete everything it names.
        ps.unknown = true;
        record({ source: `${spec.registry}/${spec.repository}`, destination: destRepo, tag: '*', action: 'failed', error: errorMessage(err) });
        if (!opts.keepGoing) stop = err;
        continue;
      }
      const kept = ps.kept;
      // Every selected tag is protected from prune, even one whose sync fails (a transient source
      // error under keepGoing must not delete the destination's copy).
      for (const tag of tags) ps.selected.add(tag);
      await mapLimit(tags, opts.parallelImages ?? DEFAULT_PARALLEL_IMAGES, async (tag) => {
        if (stop || opts.signal?.aborted) return;
        const srcRef: ImageReference = isDigest(tag)
          ? { registry: spec.registry, repository: spec.repository, digest: tag }
          : { registry: spec.registry, repository: spec.repository, tag };
        const destRef: ImageReference | undefined =
          target.kind === 'registry'
            ? isDigest(tag)
              ? { registry: target.registry, repository: destRepo, digest: tag }
              : { registry: target.registry, repository: destRepo, tag }
            : undefined;
        const src = await new DockerReference(srcRef).newSource(srcCtx);
        // Layout destinations are opened inside the try (a bad ref name or an unwritable directory
        // is this image's failure, reported under keepGoing, not an escape from the whole sync),
        // and not at all in a dry run, which must not create layouts on disk.
        const localTag = isDigest(tag) ? tag.replace(':', '-') : tag;
        const layoutRef = target.kind === 'layout' ? parseOciReference(`${pruneKey}:${localTag}`) : undefined;
        const localRef: TransportReference | undefined = layoutRef ?? (target.kind === 'dir' ? new DirReference(`${pruneKey}:${localTag}`) : undefined);
        let dest: ImageDestination | undefined = destRef ? await new DockerReference(destRef).newDestination(destCtx) : undefined;
        const item: SyncItem = { source: src.name, destination: dest?.name ?? localRef!.toString(), tag, action: 'failed' };
        try {
          // A local destination is created on open: a policy refusal must come first.
          const checkPolicy = () =>
            opts.policy ? enforcePolicy(opts.policy, new DockerReference(srcRef), { ...opts, srcContext: srcCtx, all: !opts.platforms?.length }) : undefined;
          if (localRef && !opts.dryRun) {
            await checkPolicy();
            dest = await localRef.newDestination();
          }
          // The destination's manifest, read only when a platform subset must be compared.
          const destManifest = async (): Promise<RawManifest | undefined> =>
            destRef && destClient
              ? getManifest(destClient, destRef.repository, referenceTarget(destRef), opts)
              : layoutRef
                ? layoutManifest(layoutRef.path, layoutRef.refName)
                : undefined;
          // Both HEADs at once: the check is a round trip per side, and it is all an unchanged tag costs.
          const [srcDigest, destDigest] = await Promise.all([
            src.currentDigest(opts),
            dest ? dest.currentDigest?.(opts).catch(() => undefined) : layoutRef ? layoutDigest(layoutRef.path, layoutRef.refName) : undefined,
          ]);
          if (!srcDigest) throw new NotFoundError(`${src.name} does not exist`);
          item.digest = srcDigest;
          kept.set(tag, srcDigest);
          if (destDigest === srcDigest) {
            item.action = 'skipped';
          } else if ((opts.platforms?.length || opts.compression) && destDigest && (await subsetUnchanged(destManifest, srcDigest, opts))) {
            // A platform subset written earlier from this very source index (see CopyOptions.recordSubset).
            item.digest = destDigest;
            item.action = 'skipped';
          } else if (opts.dryRun) {
            item.action = 'would-copy';
          } else {
            if (!localRef) await checkPolicy();
            const written = await sharedDigests.write(`${pruneKey}\n${srcDigest}`, dest!, opts.signal, async () => {
              // The image and its attachments, as `copy` carries them; into a layout (air gap)
              // the attachment tags become ref names beside the image's (layout-attachments.ts).
              const result = await copyBetween(src, dest!, { ...opts, all: !opts.platforms?.length, recordSubset: true });
              item.bytes = result.bytesCopied;
              return result.manifest;
            });
            item.digest = written.digest;
            item.action = 'copied';
          }
        } catch (err) {
          item.action = 'failed';
          item.error = errorMessage(err);
          log.info({ source: item.source, err: item.error }, 'sync of image failed');
          if (!opts.keepGoing) stop ??= err;
        } finally {
          await dest?.close();
          record(item);
        }
      });
    }
    // Cancelled: the caller learns it from the signal's reason, not from a report of half the tags.
    opts.signal?.throwIfAborted();
    if (opts.prune && !stop) {
      for (const ps of pruneSets.values()) {
        if (ps.unknown) continue;
        await prune(ps, target, opts, record);
      }
    }
  } finally {
    await pool.close();
  }
  if (stop) {
    if (stop instanceof StevedoreError) throw stop;
    throw new StevedoreError('SYNC_FAILED', errorMessage(stop), { cause: stop });
  }
  return report;
}

/**
 * Whether the destination holds the platform subset `platforms` of the source index `srcDigest`, by
 * the annotations copy's recordSubset leaves on it: no source manifest is read (no pull spent).
 */
async function subsetUnchanged(
  read: () => Promise<RawManifest | undefined>,
  srcDigest: Digest,
  opts: { signal?: AbortSignal; platforms?: readonly Platform[]; compression?: string },
): Promise<boolean> {
  if (opts.signal?.aborted) return false;
  const raw = await read().catch(() => undefined);
  if (!raw) return false;
  const platforms = opts.platforms?.length ? opts.platforms : undefined;
  // A platform subset is always an index; a converted single image is an image manifest.
  if (platforms && !isIndexMediaType(raw.mediaType)) return false;
  const parsed = parseManifest(raw.bytes, raw.mediaType);
  const notes = parsed.kind === 'index' ? parsed.index.annotations : parsed.manifest.annotations;
  if (notes?.[SUBSET_SOURCE_ANNOTATION] !== srcDigest) return false;
  if (platforms && notes[SUBSET_PLATFORMS_ANNOTATION] !== subsetPlatforms(platforms)) return false;
  return opts.compression === undefined || notes[CONVERTED_COMPRESSION_ANNOTATION] === opts.compression;
}

/** The manifest a layout's ref names, if any. */
async function layoutManifest(dir: string, refName: string | undefined): Promise<RawManifest | undefined> {
  try {
    const layout = await OciLayout.open(dir);
    const desc = await layout.resolve(refName);
    return { bytes: await layout.readBlob(desc.digest), mediaType: desc.mediaType, digest: desc.digest };
  } catch {
    return undefined;
  }
}

interface PruneSet {
  spec: SyncRepoSpec;
  destRepo: string;
  destClient: RegistryClient | undefined;
  /** Every tag (or digest) the specs selected, synced or not. */
  selected: Set<string>;
  /** Selected tags whose source digest is known. */
  kept: Map<string, Digest>;
  /** A spec's tag list could not be read: prune nothing here. */
  unknown: boolean;
}

/**
 * Deletes destination tags the source selection no longer has. A registry deletes manifests by
 * digest (and so every tag on them), so a tag whose digest a kept tag shares is reported, not deleted.
 */
/** The subject digest an attachment tag names (`sha256-<hex>[.sig|.att|.sbom]`), if it is one. */
export function attachmentSubject(tag: string): Digest | undefined {
  const m = /^sha256-([a-f0-9]{64})(?:\.(?:sig|att|sbom))?$/.exec(tag);
  return m ? (`sha256:${m[1]}` as Digest) : undefined;
}

async function prune(ps: PruneSet, target: SyncTarget, opts: SyncOptions, record: (item: SyncItem) => void): Promise<void> {
  const { spec, destRepo, destClient, selected } = ps;
  const keptDigests = new Set(ps.kept.values());
  const source = `${spec.registry}/${spec.repository}`;
  if (target.kind === 'dir') return;
  if (target.kind === 'layout') {
    const dir = join(target.dir, destRepo);
    let layout: OciLayout;
    try {
      layout = await OciLayout.open(dir);
    } catch {
      return;
    }
    const names = await layout.refNames();
    // Attachment ref names (exported signatures) go only with the image they belong to, as tags do in a registry.
    const gone = new Set<Digest>();
    for (const name of names) {
      if (selected.has(name) || selected.has(name.replace('-', ':')) || attachmentSubject(name) !== undefined) continue;
      gone.add((await layout.resolve(name)).digest);
      if (!opts.dryRun) await layout.removeRef(name);
      record({ source, destination: `oci:${dir}:${name}`, tag: name, action: opts.dryRun ? 'would-prune' : 'pruned' });
    }
    for (const name of names) {
      const subject = attachmentSubject(name);
      if (subject === undefined || !gone.has(subject) || keptDigests.has(subject)) continue;
      if (!opts.dryRun) await layout.removeRef(name);
      record({ source, destination: `oci:${dir}:${name}`, tag: name, action: opts.dryRun ? 'would-prune' : 'pruned' });
    }
    return;
  }
  let destTags: string[];
  try {
    destTags = await listTags(destClient!, destRepo, opts);
  } catch (err) {
    if ((err as { code?: string }).code === 'NOT_FOUND') return;
    throw err;
  }
  // A selected tag that failed to sync has no source digest; what the destination holds under it
  // is still kept, so deleting a shared digest must not take it away.
  for (const tag of selected) {
    if (ps.kept.has(tag) || isDigest(tag) || !destTags.includes(tag)) continue;
    const head = await headManifest(destClient!, destRepo, tag, opts).catch(() => undefined);
    if (head) keptDigests.add(head.digest);
  }
  // Two pruned tags on one digest go with one DELETE; the second must still be reported as pruned
  // (its HEAD would answer 404 after the first delete).
  const deleted = new Set<Digest>();
  const heads = new Map<string, Digest | undefined>();
  // Attachment tags (cosign's `sha256-<hex>.sig|.att|.sbom`, the referrers fallback `sha256-<hex>`)
  // are never selected by tag filters, but they belong to an image: they go only with the image
  // they are attached to, after it has been pruned, and otherwise stay (sync just carried them).
  const attachments = destTags.filter((tag) => !selected.has(tag) && attachmentSubject(tag) !== undefined);
  const images = destTags.filter((tag) => !selected.has(tag) && attachmentSubject(tag) === undefined);
  for (const tag of images) {
    heads.set(tag, (await headManifest(destClient!, destRepo, tag, opts).catch(() => undefined))?.digest);
  }
  for (const tag of [...images, ...attachments]) {
    const subject = attachmentSubject(tag);
    if (subject !== undefined && !deleted.has(subject)) continue;
    const destination = `docker://${formatReference({ registry: target.registry, repository: destRepo, tag })}`;
    try {
      const head = heads.get(tag) ? { digest: heads.get(tag)! } : await headManifest(destClient!, destRepo, tag, opts);
      if (!head) continue;
      if (deleted.has(head.digest)) {
        record({ source, destination, tag, digest: head.digest, action: opts.dryRun ? 'would-prune' : 'pruned' });
        continue;
      }
      if (keptDigests.has(head.digest)) {
        // Registries delete manifests, not tags: this tag goes when the kept tags leave its digest.
        // Nothing is wrong, and nothing the user can do here; reported as left, not as a failure.
        const with_ = [...ps.kept].filter(([, d]) => d === head.digest).map(([t]) => t);
        record({
          source,
          destination,
          tag,
          action: 'skipped',
          digest: head.digest,
          note: `not pruned: shares its digest with kept tag${with_.length === 1 ? '' : 's'} ${with_.join(', ') || '(selected)'}; registries delete by digest`,
        });
        continue;
      }
      if (!opts.dryRun) await deleteManifest(destClient!, destRepo, head.digest, opts);
      deleted.add(head.digest);
      record({ source, destination, tag, digest: head.digest, action: opts.dryRun ? 'would-prune' : 'pruned' });
    } catch (err) {
      record({ source, destination, tag, action: 'failed', error: `prune: ${errorMessage(err)}` });
      if (!opts.keepGoing) throw err;
    }
  }
}
