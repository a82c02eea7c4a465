/**
 * Import from an OCI layout: the selected ref names of one layout copied to a registry repository,
 * skipping those whose digest the registry already has under that tag. The ImageMirror controller
 * (layout sources) and `stevedore sync --src oci` both call it. No prune: a layout has no history
 * of what it exported. Export into OCI archives (`sync --dest oci-archive`): syncToArchives.
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { makeScratchDir } from '../transports/local-util.js';
import { directoryEntries, extractArchive, writeTarAtomic } from '../transports/tar-util.js';
import type { Policy } from '../policy/types.js';
import { headManifest } from '../registry/manifests.js';
import { DockerDestination, DockerReference, RegistryClients } from '../transports/docker.js';
import { parseOciReference } from '../transports/oci.js';
import type { TransportContext } from '../transports/types.js';
import { OciLayout } from '../oci/layout.js';
import { errorMessage, InvalidInputError } from '../util/errors.js';
import { mapLimit } from '../util/pool.js';
import { copyReference } from './copy.js';
import type { SyncRepoSpec } from './sync-config.js';
import { chooseTags, emptyReport, recordItem, SharedDigestWrites, sync, type SyncItem, type SyncOptions, type SyncReport, type SyncTarget } from './sync.js';

export interface LayoutImportOptions extends Pick<SyncOptions, 'platforms' | 'dryRun' | 'signal' | 'onItem' | 'retry' | 'signatures'> {
  policy?: Policy;
  parallelImages?: number;
}

/** Copies the selected ref names of the layout at `dir` to `dest`; one item per ref name, as sync reports them. */
export async function syncFromLayout(
  dir: string,
  selection: Omit<SyncRepoSpec, 'credentials' | 'registry' | 'repository'>,
  dest: { registry: string; repository: string; context: TransportContext },
  opts: LayoutImportOptions,
): Promise<SyncReport> {
  const report = emptyReport();
  const record = (item: SyncItem) => {
    recordItem(report, item);
    opts.onItem?.(item);
  };
  const source = `oci:${dir}`;
  let layout: OciLayout;
  let names: string[];
  try {
    layout = await OciLayout.open(dir);
    names = await layout.refNames();
  } catch (err) {
    record({ source, destination: `${dest.registry}/${dest.repository}`, tag: '*', action: 'failed', error: errorMessage(err) });
    return report;
  }
  const explicit = selection.tags.length > 0 && !selection.regex && !selection.deny && !selection.semver && selection.newest === undefined;
  let tags: string[];
  try {
    tags = explicit
      ? selection.tags
      : await chooseTags({ ...selection, registry: '', repository: '' }, names, (tag) => parseOciReference(`${dir}:${tag}`).newSource(), {
          signal: opts.signal,
        });
  } catch (err) {
    record({ source, destination: `${dest.registry}/${dest.repository}`, tag: '*', action: 'failed', error: errorMessage(err) });
    return report;
  }
  // One client for the HEADs and for every tag's copy (connections and bearer token reused, as in
  // sync): copyReference opens its destinations through the pool in destContext.
  const pool = new RegistryClients();
  const destContext: TransportContext = { ...dest.context, clients: pool };
  const client = pool.client({ registry: dest.registry, repository: dest.repository }, destContext);
  try {
    const sharedDigests = new SharedDigestWrites();
    await mapLimit(tags, opts.parallelImages ?? 4, async (tag) => {
      const destRef = new DockerReference({ registry: dest.registry, repository: dest.repository, tag });
      const item: SyncItem = { source: `${source}:${tag}`, destination: destRef.toString(), tag, action: 'failed' };
      try {
        const top = await layout.resolve(tag);
        item.digest = top.digest;
        const there = await headManifest(client, dest.repository, tag, opts).catch(() => undefined);
        if (there?.digest === top.digest && !opts.platforms?.length) {
          item.action = 'skipped';
        } else if (opts.dryRun) {
          item.action = 'would-copy';
        } else {
          // Ref names sharing a digest are written once, then tagged (SharedDigestWrites).
          const to = new DockerDestination(destRef.ref, client, false);
          const written = await sharedDigests.write(top.digest, to, opts.signal, async () => {
            const result = await copyReference(parseOciReference(`${dir}:${tag}`), destRef, {
              destContext,
              all: !opts.platforms?.length,
              platforms: opts.platforms,
              ...(opts.policy ? { policy: opts.policy } : {}),
              // The layout's attachment ref names for this image (and an index's platform images)
              // go along as tags: copyReference does it for a layout source (layout-attachments.ts).
              ...(opts.signatures ? { signatures: opts.signatures } : {}),
              signal: opts.signal,
            });
            return result.manifest;
          });
          item.digest = written.digest;
          item.action = 'copied';
        }
      } catch (err) {
        item.error = errorMessage(err);
      }
      record(item);
    });
  } finally {
    await pool.close();
  }
  return report;
}

/**
 * syncFromLayout on an OCI archive (a tar of such a layout, e.g. `tar -C DIR/app -cf app.tar .`):
 * extracted into scratch space first, with the archive transports' checks (no links, no path out
 * of the directory), and removed afterwards.
 */
export async function syncFromArchive(
  file: string,
  selection: Omit<SyncRepoSpec, 'credentials' | 'registry' | 'repository'>,
  dest: { registry: string; repository: string; context: TransportContext },
  opts: LayoutImportOptions,
): Promise<SyncReport> {
  const dir = await makeScratchDir(undefined, 'oci-archive');
  try {
    await extractArchive(file, dir, { what: file, signal: opts.signal });
    return await syncFromLayout(dir, selection, dest, opts);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The OCI layouts (directories holding `oci-layout`) under `root`. */
async function layoutDirs(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    if (entries.some((e) => e.isFile() && e.name === 'oci-layout')) {
      out.push(dir);
      return;
    }
    for (const e of entries) if (e.isDirectory()) await walk(join(dir, e.name));
  };
  await walk(root);
  return out.sort();
}

export interface ArchiveSyncReport extends SyncReport {
  /** The archives written, one per source repository: `<dir>/<name>.tar`. */
  archives: string[];
}

/**
 * `sync --dest oci-archive DIR`: what `--dest oci` writes (one OCI layout per source repository,
 * with the images' cosign `.sig`/`.att`/`.sbom` tags and referrers as ref names beside them), but
 * each layout as one tar, `DIR/<name>.tar` (an oci-archive that `sync --src oci` and
 * `copy oci-archive:` read). The layouts are built in scratch space and each archive is renamed
 * into place whole, so an interrupted or failed sync leaves the previous archives (or none). Each
 * run writes its archives afresh with what it selected (as `copy` to an oci-archive does): there is
 * nothing to compare against, so nothing is skipped.
 */
export async function syncToArchives(
  specs: SyncRepoSpec[],
  dest: { dir: string; naming?: Extract<SyncTarget, { kind: 'layout' }>['naming']; tmpDir?: string },
  opts: SyncOptions = {},
): Promise<ArchiveSyncReport> {
  if (opts.prune) throw new InvalidInputError('--prune is not supported with --dest oci-archive: each archive is written afresh');
  const scratch = await makeScratchDir(dest.tmpDir ? { tmpDir: dest.tmpDir } : undefined, 'sync-archive');
  try {
    // Items name the archive an image goes into, not the scratch layout.
    const inScratch = `oci:${scratch}/`;
    const onItem = opts.onItem;
    const named = (item: SyncItem): SyncItem => {
      if (!item.destination.startsWith(inScratch)) return item;
      const rest = item.destination.slice(inScratch.length);
      const colon = rest.lastIndexOf(':');
      return {
        ...item,
        destination: colon < 0 ? `oci-archive:${join(dest.dir, rest)}.tar` : `oci-archive:${join(dest.dir, rest.slice(0, colon))}.tar:${rest.slice(colon + 1)}`,
      };
    };
    const report = await sync(
      specs,
      { kind: 'layout', dir: scratch, ...(dest.naming ? { naming: dest.naming } : {}) },
      { ...opts, ...(onItem ? { onItem: (item: SyncItem) => onItem(named(item)) } : {}) },
    );
    report.items = report.items.map(named);
    const archives: string[] = [];
    if (opts.dryRun) return { ...report, archives };
    for (const dir of await layoutDirs(scratch)) {
      opts.signal?.throwIfAborted();
      // A layout whose every image failed holds no ref names: no archive for it.
      if ((await (await OciLayout.open(dir)).refNames()).length === 0) continue;
      const file = join(dest.dir, `${relative(scratch, dir)}.tar`);
      await mkdir(dirname(file), { recursive: true });
      await writeTarAtomic(file, await directoryEntries(dir), opts.signal);
      archives.push(file);
    }
    return { ...report, archives };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
