import { join } from 'node:path';
import { copyImage, copyReference } from '../copy/copy.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import { isDigest } from '../oci/digest.js';
import { OciLayout } from '../oci/layout.js';
import { encodeManifest, parseManifest, type ImageIndex, type RawManifest } from '../oci/manifest.js';
import { isIndexMediaType, MediaType } from '../oci/mediatype.js';
import { formatPlatform, hostPlatform, normalizePlatform, platformMatches, type Platform } from '../oci/platform.js';
import { formatReference, hasRegistryHost, parseReference, referenceTarget, type ImageReference } from '../oci/reference.js';
import { headManifest, putManifest } from '../registry/manifests.js';
import { normaliseImageName } from '../runtime/store/names.js';
import { defaultStoreRoot } from '../runtime/store/paths.js';
import { DockerReference, registryClientFor } from '../transports/docker.js';
import { parseImageName } from '../transports/index.js';
import { OciLayoutDestination, OciReference, splitLayoutReference } from '../transports/oci.js';
import type { ImageSource, TransportContext, TransportReference } from '../transports/types.js';
import { InvalidInputError, NotFoundError, StevedoreError } from '../util/errors.js';
import { withFileLock } from '../util/fs.js';

/** `oci` for an OCI image index, `v2s2` for a Docker manifest list. */
export type ListFormat = 'oci' | 'v2s2';

/** A manifest list that does not exist, or a change it cannot take. */
export class ManifestListError extends StevedoreError {
  constructor(code: 'MANIFEST_LIST_NOT_FOUND' | 'MANIFEST_LIST_EXISTS' | 'MANIFEST_LIST_INVALID', message: string) {
    super(code, message);
  }
}

/** Where a list lives: an OCI layout (the local store's `manifests/`, or one named by `oci:`) and its ref name. */
export interface ListLocation {
  layoutDir: string;
  refName: string;
  /** How the user named it, for messages. */
  display: string;
}

/**
 * Resolves a list name as podman does: `oci:DIR[:REF]` is a list in that layout; anything else is
 * a list in the local store (`<root>/manifests`, an OCI layout), named like an image — a bare
 * name gets `localhost/` and `:latest` (`mylist` is `localhost/mylist:latest`).
 */
export function listLocation(name: string, storeRoot: string = defaultStoreRoot()): ListLocation {
  if (name.startsWith('oci:')) {
    const { path, refName } = splitLayoutReference(name.slice(4), 'oci') as { path: string; refName?: string };
    return { layoutDir: path, refName: refName ?? 'latest', display: name };
  }
  let ref: ImageReference;
  try {
    ref = parseReference(name);
  } catch (err) {
    throw new InvalidInputError(`invalid manifest list name "${name}": ${(err as Error).message}`);
  }
  const qualified = hasRegistryHost(name) ? ref : { ...ref, registry: 'localhost', repository: ref.repository.replace(/^library\//, '') };
  const full = formatReference(qualified.tag || qualified.digest ? qualified : { ...qualified, tag: 'latest' });
  return { layoutDir: join(storeRoot, 'manifests'), refName: full, display: full };
}

export interface OpenList {
  location: ListLocation;
  layout: OciLayout;
  raw: RawManifest;
  index: ImageIndex;
}

async function openLayout(loc: ListLocation, create: boolean): Promise<OciLayout> {
  try {
    return await OciLayout.open(loc.layoutDir, { create });
  } catch (err) {
    if (err instanceof NotFoundError) throw new ManifestListError('MANIFEST_LIST_NOT_FOUND', `${loc.display}: no such manifest list`);
    throw err;
  }
}

/** Reads a list; a name that is an image (not an index) or missing is an error naming it. */
export async function readList(loc: ListLocation): Promise<OpenList> {
  const layout = await openLayout(loc, false);
  let desc: Descriptor;
  try {
    desc = await layout.resolve(loc.refName);
  } catch (err) {
    if (err instanceof NotFoundError) throw new ManifestListError('MANIFEST_LIST_NOT_FOUND', `${loc.display}: no such manifest list`);
    throw err;
  }
  if (!isIndexMediaType(desc.mediaType)) throw new ManifestListError('MANIFEST_LIST_INVALID', `${loc.display} is an image, not a manifest list`);
  const bytes = await layout.readBlob(desc.digest);
  const parsed = parseManifest(bytes, desc.mediaType);
  if (parsed.kind !== 'index') throw new ManifestListError('MANIFEST_LIST_INVALID', `${loc.display} is not a manifest list`);
  return { location: loc, layout, raw: { bytes, mediaType: desc.mediaType, digest: desc.digest }, index: parsed.index };
}

/** Writes the list's new version (blob, then the ref), under the layout's list lock by the caller. */
async function writeList(layout: OciLayout, loc: ListLocation, index: ImageIndex): Promise<Digest> {
  const raw = encodeManifest(index);
  await layout.writeBlobBytes(raw.bytes, raw.digest);
  await layout.setRef({ mediaType: raw.mediaType, digest: raw.digest, size: raw.bytes.length }, loc.refName);
  return raw.digest;
}

/** Read-modify-write of one list, serialised across processes. */
async function editList(loc: ListLocation, fn: (index: ImageIndex, layout: OciLayout) => Promise<ImageIndex> | ImageIndex): Promise<Digest> {
  const layout = await openLayout(loc, false);
  return withFileLock(join(loc.layoutDir, 'manifest-lists.lock'), async () => {
    const list = await readList(loc);
    return writeList(layout, loc, await fn(list.index, layout));
  });
}

/** `manifest create`: an empty list (OCI index, or Docker manifest list with `v2s2`); an existing name is an error unless `amend`. */
export async function createList(loc: ListLocation, opts: { format?: ListFormat; amend?: boolean } = {}): Promise<Digest> {
  const layout = await openLayout(loc, true);
  return withFileLock(join(loc.layoutDir, 'manifest-lists.lock'), async () => {
    const existing = await layout.resolve(loc.refName).catch((err: unknown) => {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    });
    if (existing) {
      if (opts.amend && isIndexMediaType(existing.mediaType)) return existing.digest;
      throw new ManifestListError(
        'MANIFEST_LIST_EXISTS',
        `${loc.display} already exists${opts.amend ? ' and is not a manifest list' : ' (use --amend to add to it)'}`,
      );
    }
    const index: ImageIndex = { schemaVersion: 2, mediaType: opts.format === 'v2s2' ? MediaType.DockerManifestList : MediaType.OciIndex, manifests: [] };
    return writeList(layout, loc, index);
  });
}

export interface PlatformOverrides {
  os?: string;
  arch?: string;
  variant?: string;
  osVersion?: string;
  osFeatures?: string[];
  features?: string[];
}

export interface AddOptions extends PlatformOverrides {
  /** Add every manifest of a source index (else the one for `arch`/`os`, or this host's platform). */
  all?: boolean;
  annotations?: Record<string, string>;
  /** Drop the entries the list had for the platforms added (in the same locked edit): a rebuild updates the list. */
  replacePlatforms?: boolean;
  context?: TransportContext;
  storeRoot?: string;
  signal?: AbortSignal;
}

/**
 * The source an image name means: a transport name as given; a bare name the local store holds
 * (`stevedore images`); else a registry image.
 */
export async function resolveImageSource(image: string, storeRoot: string): Promise<TransportReference> {
  if (/^(docker|oci|oci-archive|dir|docker-archive):/.test(image)) return parseImageName(image);
  const { storeName } = normaliseImageName(image);
  const imagesDir = join(storeRoot, 'images');
  const local = await OciLayout.open(imagesDir)
    .then(
      (l) => l.resolve(storeName),
      () => undefined,
    )
    .catch(() => undefined);
  if (local) return new OciReference(imagesDir, storeName);
  return parseImageName(`docker://${image}`);
}

function applyOverrides(p: Platform | undefined, o: PlatformOverrides): Platform | undefined {
  if (!p && !o.os && !o.arch) return undefined;
  const out: Platform = { architecture: o.arch ?? p?.architecture ?? '', os: o.os ?? p?.os ?? '' };
  const variant = o.variant ?? (o.arch ? undefined : p?.variant);
  if (variant) out.variant = variant;
  const osVersion = o.osVersion ?? p?.['os.version'];
  if (osVersion) out['os.version'] = osVersion;
  const osFeatures = o.osFeatures ?? p?.['os.features'];
  if (osFeatures?.length) out['os.features'] = osFeatures;
  const features = o.features ?? p?.features;
  if (features?.length) out.features = features;
  return out;
}

/** The platform an image's config declares (architecture, os, variant, os.version, os.features). */
async function configPlatform(layout: OciLayout, manifest: RawManifest): Promise<Platform | undefined> {
  const parsed = parseManifest(manifest.bytes, manifest.mediaType);
  if (parsed.kind !== 'image') return undefined;
  const cfg = JSON.parse((await layout.readBlob(parsed.manifest.config.digest)).toString('utf8')) as Record<string, unknown>;
  if (typeof cfg.architecture !== 'string' || typeof cfg.os !== 'string' || cfg.architecture === '') return undefined;
  const p: Platform = { architecture: cfg.architecture, os: cfg.os };
  if (typeof cfg.variant === 'string' && cfg.variant) p.variant = cfg.variant;
  if (typeof cfg['os.version'] === 'string' && cfg['os.version']) p['os.version'] = cfg['os.version'];
  if (Array.isArray(cfg['os.features']) && cfg['os.features'].length) p['os.features'] = cfg['os.features'] as string[];
  return p;
}

/** An ImageSource whose top manifest is one child of the real source (by digest). */
function pinned(src: ImageSource, digest: Digest): ImageSource {
  return {
    name: `${src.name}@${digest}`,
    location: src.location,
    getManifest: (d, o) => src.getManifest(d ?? digest, o),
    getBlob: (desc, o) => src.getBlob(desc, o),
    close: async () => undefined,
  };
}

/**
 * `manifest add LIST IMAGE`: copies the image (or, from an index, the platform asked for or every
 * manifest with `all`) with its blobs into the list's layout, then records it in the list with
 * its platform (from the source index or the image's config, overridden by the flags) and
 * annotations. IMAGE is a name (resolveImageSource) or a reference; blobs the layout already has
 * are not written again. An entry with the same digest is replaced (with `replacePlatforms`, one
 * of the same platform too). Returns the list's new digest, the entries added and the digests replaced.
 */
export async function addToList(
  loc: ListLocation,
  image: string | TransportReference,
  opts: AddOptions = {},
): Promise<{ list: Digest; added: Digest[]; entries: Descriptor[]; replaced: Digest[] }> {
  const ref = typeof image === 'string' ? await resolveImageSource(image, opts.storeRoot ?? defaultStoreRoot()) : image;
  const { index: current } = await readList(loc);
  if (opts.annotations && Object.keys(opts.annotations).length > 0 && current.mediaType === MediaType.DockerManifestList) {
    throw new ManifestListError('MANIFEST_LIST_INVALID', `${loc.display} is a Docker manifest list, which has no annotations; create it with --format oci`);
  }
  const layout = await OciLayout.open(loc.layoutDir);
  const src = await ref.newSource(opts.context);
  const entries: Descriptor[] = [];
  try {
    const top = await src.getManifest(undefined, { signal: opts.signal });
    let picks: Array<{ digest: Digest; platform?: Platform; annotations?: Record<string, string> }>;
    const parsed = parseManifest(top.bytes, top.mediaType);
    if (parsed.kind === 'index') {
      const children = parsed.index.manifests.filter((m) => !isIndexMediaType(m.mediaType));
      if (opts.all) {
        picks = children.map((m) => ({ digest: m.digest, platform: m.platform }));
      } else {
        const want =
          opts.arch || opts.os
            ? normalizePlatform({
                architecture: opts.arch ?? hostPlatform().architecture,
                os: opts.os ?? 'linux',
                ...(opts.variant ? { variant: opts.variant } : {}),
              })
            : hostPlatform();
        const hit = children.find((m) => platformMatches(m.platform, want));
        if (!hit)
          throw new NotFoundError(
            `${image.toString()} has no image for platform ${formatPlatform(want)} (it has: ${children.map((m) => (m.platform ? formatPlatform(m.platform) : 'unknown')).join(', ') || 'none'}); use --all to add every one`,
          );
        picks = [{ digest: hit.digest, platform: hit.platform }];
      }
    } else {
      picks = [{ digest: top.digest }];
    }
    for (const pick of picks) {
      // Blobs and manifests beside the list, named by it only, and kept in their media type (as podman).
      const dest = OciLayoutDestination.of(layout, undefined, loc.display, { untagged: true, anyManifestType: true });
      await copyImage(pinned(src, pick.digest), dest, { signal: opts.signal });
      const written = dest.written!;
      const manifest: RawManifest = { bytes: await layout.readBlob(written.digest), mediaType: written.mediaType, digest: written.digest };
      const platform = applyOverrides(pick.platform ?? (await configPlatform(layout, manifest)), picks.length === 1 ? opts : {});
      const entry: Descriptor = { mediaType: written.mediaType, digest: written.digest, size: written.size };
      if (platform) entry.platform = platform;
      if (opts.annotations && Object.keys(opts.annotations).length > 0) entry.annotations = { ...opts.annotations };
      entries.push(entry);
    }
  } finally {
    await src.close();
  }
  const replaced: Digest[] = [];
  const list = await editList(loc, (index) => {
    const digests = new Set(entries.map((e) => e.digest));
    const platforms = new Set(entries.flatMap((e) => (e.platform ? [formatPlatform(e.platform)] : [])));
    const kept = index.manifests.filter((m) => {
      if (digests.has(m.digest)) return false;
      if (opts.replacePlatforms && m.platform && platforms.has(formatPlatform(m.platform))) {
        replaced.push(m.digest);
        return false;
      }
      return true;
    });
    return { ...index, manifests: [...kept, ...entries] };
  });
  return { list, added: entries.map((e) => e.digest), entries, replaced };
}

/** The entry `which` names: a digest in the list (podman's `annotate LIST DIGEST`). */
function entryIndex(index: ImageIndex, which: string, loc: ListLocation): number {
  if (!isDigest(which)) throw new InvalidInputError(`"${which}" is not a digest: name the list entry by its digest (manifest inspect ${loc.display})`);
  const i = index.manifests.findIndex((m) => m.digest === which);
  if (i < 0) throw new ManifestListError('MANIFEST_LIST_INVALID', `${loc.display} has no entry ${which}`);
  return i;
}

/** `manifest annotate LIST DIGEST`: sets platform fields and adds annotations on one entry. */
export async function annotateList(loc: ListLocation, digest: string, opts: PlatformOverrides & { annotations?: Record<string, string> }): Promise<Digest> {
  return editList(loc, (index) => {
    const i = entryIndex(index, digest, loc);
    const entry = { ...index.manifests[i]! };
    const platform = applyOverrides(entry.platform, opts);
    if (platform) entry.platform = platform;
    if (opts.annotations && Object.keys(opts.annotations).length > 0) {
      if (index.mediaType === MediaType.DockerManifestList)
        throw new ManifestListError('MANIFEST_LIST_INVALID', `${loc.display} is a Docker manifest list, which has no annotations; create it with --format oci`);
      entry.annotations = { ...(entry.annotations ?? {}), ...opts.annotations };
    }
    const manifests = [...index.manifests];
    manifests[i] = entry;
    return { ...index, manifests };
  });
}

/** `manifest remove LIST DIGEST`: drops one entry (its blobs stay in the layout, unreferenced). */
export async function removeFromList(loc: ListLocation, digest: string): Promise<Digest> {
  return editList(loc, (index) => {
    const i = entryIndex(index, digest, loc);
    return { ...index, manifests: index.manifests.filter((_, j) => j !== i) };
  });
}

/** `manifest rm LIST`: forgets the list (not the images it lists). Returns the digest it had. */
export async function deleteList(loc: ListLocation): Promise<Digest> {
  const list = await readList(loc);
  await list.layout.removeRef(loc.refName);
  return list.raw.digest;
}

/** Checks a `KEY=VALUE` annotation. */
export function parseAnnotation(s: string): [string, string] {
  const eq = s.indexOf('=');
  if (eq <= 0) throw new InvalidInputError(`annotation "${s}" must be KEY=VALUE`);
  return [s.slice(0, eq), s.slice(eq + 1)];
}

export interface PushOptions {
  /** Destination manifest format: as stored (default), `oci`, or `v2s2` (Docker). */
  format?: ListFormat;
  context?: TransportContext;
  signal?: AbortSignal;
  jobs?: number;
}

/**
 * `manifest push --all=false LIST docker://DEST`: the list alone, as podman does, to a registry
 * repository that already holds every image it names (checked first, by digest: the registry is
 * never left naming a manifest it does not have).
 */
export async function pushListOnly(loc: ListLocation, dest: TransportReference, opts: PushOptions = {}): Promise<Digest> {
  const list = await readList(loc);
  if (!(dest instanceof DockerReference)) throw new InvalidInputError(`push --all=false needs a registry destination (docker://), not ${dest.toString()}`);
  if (opts.format && opts.format !== (list.raw.mediaType === MediaType.DockerManifestList ? 'v2s2' : 'oci'))
    throw new InvalidInputError("push --all=false cannot change the list's format (its images would change digest); push with --all");
  const client = registryClientFor(dest.ref, opts.context);
  try {
    for (const m of list.index.manifests) {
      if (!(await headManifest(client, dest.ref.repository, m.digest, { signal: opts.signal }))) {
        throw new NotFoundError(
          `${dest.toString()} does not hold ${m.digest} (${m.platform ? formatPlatform(m.platform) : 'no platform'}), which the list names; push with --all`,
        );
      }
    }
    await putManifest(client, dest.ref.repository, referenceTarget(dest.ref), list.raw, { signal: opts.signal });
    return list.raw.digest;
  } finally {
    await client.close();
  }
}

/**
 * `manifest push --all LIST DEST`: the list and every image it lists go through the copy engine
 * (blobs first, each image's manifest, the list last), so a registry never names a manifest whose
 * content is missing.
 */
export async function pushList(loc: ListLocation, dest: TransportReference, opts: PushOptions = {}) {
  await readList(loc); // a clear "no such manifest list" before the copy engine's messages
  return copyReference(new OciReference(loc.layoutDir, loc.refName), dest, {
    all: true,
    format: opts.format,
    destContext: opts.context,
    signal: opts.signal,
    jobs: opts.jobs,
  });
}
