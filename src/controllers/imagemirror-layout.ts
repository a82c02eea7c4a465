/**
 * OCI layouts as ImageMirror sources and destinations. A controller Pod cannot mount the
 * PersistentVolumeClaims of other namespaces, so layouts live on volumes the operator mounts into
 * the controller under `--layout-root`: spec.*.layout {claimName, path} of a mirror in namespace NS
 * is the directory `<root>/NS/<claimName>/<path>`. The namespace level keeps tenants apart, and
 * symlinks that lead out of `<root>/NS/<claimName>` are refused.
 */
import { realpath } from 'node:fs/promises';
import { basename, dirname, join, sep } from 'node:path';
import type { SyncRepoSpec } from '../copy/sync-config.js';
import { copyReference } from '../copy/copy.js';
import { chooseTags, emptyReport, recordItem, type SyncItem, type SyncOptions, type SyncReport } from '../copy/sync.js';
import { OciLayout } from '../oci/layout.js';
import type { Policy } from '../policy/types.js';
import { headManifest } from '../registry/manifests.js';
import { DockerReference, registryClientFor } from '../transports/docker.js';
import { parseOciReference } from '../transports/oci.js';
import type { TransportContext } from '../transports/types.js';
import { ReconcileError, StallingError } from '../k8s/runtime/errors.js';
import { errorMessage } from '../util/errors.js';
import { mapLimit } from '../util/pool.js';

export interface LayoutLocation {
  claimName: string;
  path?: string;
}

const isMissing = (err: unknown) => (err as { code?: string }).code === 'ENOENT' || (err as { code?: string }).code === 'ENOTDIR';

const inside = (base: string, p: string) => p === base || p.startsWith(base + sep);

/**
 * The controller directory of a layout. A source must exist; a destination may not yet (the sync
 * creates it), but its nearest existing ancestor must resolve inside the volume.
 */
export async function layoutDirectory(
  root: string | undefined,
  namespace: string,
  side: 'source' | 'destination',
  loc: LayoutLocation,
): Promise<string> {
  const field = `spec.${side}.layout`;
  if (!root) {
    throw new StallingError('InvalidSpec', `${field}: this controller was started without --layout-root, so it has no volumes for OCI layouts`);
  }
  const rel = (loc.path ?? '/').replace(/^\/+/, '');
  if (rel.split('/').includes('..')) throw new StallingError('InvalidSpec', `${field}.path must not contain ".."`);
  const volume = join(root, namespace, loc.claimName);
  let realVolume: string;
  try {
    realVolume = await realpath(volume);
  } catch (err) {
    if (isMissing(err)) {
      throw new ReconcileError(
        'LayoutNotFound',
        `${field}: volume "${loc.claimName}" is not mounted in the controller (no directory ${volume}; mount it at --layout-root/<namespace>/<claimName>)`,
      );
    }
    throw err;
  }
  const wanted = join(realVolume, rel);
  // Walk up to the first part that exists and see where it really is.
  let probe = wanted;
  let rest = '';
  for (;;) {
    try {
      const real = await realpath(probe);
      if (!inside(realVolume, real)) {
        throw new StallingError('InvalidSpec', `${field}.path "${loc.path}" leads out of volume "${loc.claimName}" (through a symbolic link)`);
      }
      const dir = rest ? join(real, rest) : real;
      if (side === 'source' && rest) {
        throw new ReconcileError('LayoutNotFound', `${field}: no directory "${rel}" in volume "${loc.claimName}"`);
      }
      return dir;
    } catch (err) {
      if (!isMissing(err) || probe === realVolume) throw err;
      rest = rest ? join(basename(probe), rest) : basename(probe);
      probe = dirname(probe);
    }
  }
}

export interface LayoutImportOptions extends Pick<SyncOptions, 'platforms' | 'dryRun' | 'signal'> {
  policy?: Policy;
  parallelImages?: number;
}

/**
 * Copies the selected ref names of an OCI layout to a registry repository, skipping those whose
 * digest the registry already has under that tag. The engine's sync reads registries only; this
 * is the same loop over copyReference for a layout source (no prune: a layout has no history of
 * what it exported).
 */
export async function syncFromLayout(
  dir: string,
  selection: Omit<SyncRepoSpec, 'credentials' | 'registry' | 'repository'>,
  dest: { registry: string; repository: string; context: TransportContext },
  opts: LayoutImportOptions,
): Promise<SyncReport> {
  const report = emptyReport();
  const source = `oci:${dir}`;
  let layout: OciLayout;
  let names: string[];
  try {
    layout = await OciLayout.open(dir);
    names = await layout.refNames();
  } catch (err) {
    recordItem(report, { source, destination: `${dest.registry}/${dest.repository}`, tag: '*', action: 'failed', error: errorMessage(err) });
    return report;
  }
  const explicit = selection.tags.length > 0 && !selection.regex && !selection.deny && !selection.semver && selection.newest === undefined;
  let tags: string[];
  try {
    tags = explicit
      ? selection.tags
      : await chooseTags({ ...selection, registry: '', repository: '' }, names, (tag) => parseOciReference(`${dir}:${tag}`).newSource(), { signal: opts.signal });
  } catch (err) {
    recordItem(report, { source, destination: `${dest.registry}/${dest.repository}`, tag: '*', action: 'failed', error: errorMessage(err) });
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
          item.digest = result.digest;
          item.action = 'copied';
        }
      } catch (err) {
        item.error = errorMessage(err);
      }
      recordItem(report, item);
    });
  } finally {
    await client.close();
  }
  return report;
}
