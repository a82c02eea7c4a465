/**
 * Import from an OCI layout: the selected ref names of one layout copied to a registry repository,
 * skipping those whose digest the registry already has under that tag. The ImageMirror controller
 * (layout sources) and `stevedore sync --src oci` both call it. No prune: a layout has no history
 * of what it exported.
 */
import type { Policy } from '../policy/types.js';
import { headManifest } from '../registry/manifests.js';
import { DockerReference, registryClientFor } from '../transports/docker.js';
import { parseOciReference } from '../transports/oci.js';
import type { TransportContext } from '../transports/types.js';
import { OciLayout } from '../oci/layout.js';
import { errorMessage } from '../util/errors.js';
import { mapLimit } from '../util/pool.js';
import { attachmentDigests } from './attachments.js';
import { copyReference } from './copy.js';
import { importAttachments } from './layout-attachments.js';
import type { SyncRepoSpec } from './sync-config.js';
import { chooseTags, emptyReport, recordItem, type SyncItem, type SyncOptions, type SyncReport } from './sync.js';

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
      : await chooseTags({ ...selection, registry: '', repository: '' }, names, (tag) => parseOciReference(`${dir}:${tag}`).newSource(), { signal: opts.signal });
  } catch (err) {
    record({ source, destination: `${dest.registry}/${dest.repository}`, tag: '*', action: 'failed', error: errorMessage(err) });
    return report;
  }
  const client = registryClientFor({ registry: dest.registry, repository: dest.repository }, dest.context);
  try {
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
          const result = await copyReference(parseOciReference(`${dir}:${tag}`), destRef, {
            destContext: dest.context,
            all: !opts.platforms?.length,
            platforms: opts.platforms,
            ...(opts.policy ? { policy: opts.policy } : {}),
            signal: opts.signal,
          });
          if (opts.signatures !== 'remove') {
            // The layout's attachment ref names for this image (and an index's platform images) go along as tags.
            const src = await parseOciReference(`${dir}:${tag}`).newSource();
            try {
              const top = await src.getManifest(undefined, opts);
              await importAttachments(dir, { client, ref: destRef.ref }, attachmentDigests(top, result.digest), opts);
            } finally {
              await src.close();
            }
          }
          item.digest = result.digest;
          item.action = 'copied';
        }
      } catch (err) {
        item.error = errorMessage(err);
      }
      record(item);
    });
  } finally {
    await client.close();
  }
  return report;
}
