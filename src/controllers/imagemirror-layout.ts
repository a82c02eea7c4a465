/**
 * OCI layouts as ImageMirror sources and destinations. A controller Pod cannot mount the
 * PersistentVolumeClaims of other namespaces, so layouts live on volumes the operator mounts into
 * the controller under `--layout-root`: spec.*.layout {claimName, path} of a mirror in namespace NS
 * is the directory `<root>/NS/<claimName>/<path>`. The namespace level keeps tenants apart, and
 * symlinks that lead out of `<root>/NS/<claimName>` are refused.
 */
import { realpath } from 'node:fs/promises';
import { basename, dirname, join, sep } from 'node:path';
import { mirrorErrors } from './imagemirror-status.js';

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
export async function layoutDirectory(root: string | undefined, namespace: string, side: 'source' | 'destination', loc: LayoutLocation): Promise<string> {
  const field = `spec.${side}.layout`;
  if (!root) {
    throw mirrorErrors.stalled('InvalidSpec', `${field}: this controller was started without --layout-root, so it has no volumes for OCI layouts`);
  }
  const rel = (loc.path ?? '/').replace(/^\/+/, '');
  if (rel.split('/').includes('..')) throw mirrorErrors.stalled('InvalidSpec', `${field}.path must not contain ".."`);
  const volume = join(root, namespace, loc.claimName);
  let realVolume: string;
  try {
    realVolume = await realpath(volume);
  } catch (err) {
    if (isMissing(err)) {
      throw mirrorErrors.failed(
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
        throw mirrorErrors.stalled('InvalidSpec', `${field}.path "${loc.path}" leads out of volume "${loc.claimName}" (through a symbolic link)`);
      }
      const dir = rest ? join(real, rest) : real;
      if (side === 'source' && rest) {
        throw mirrorErrors.failed('LayoutNotFound', `${field}: no directory "${rel}" in volume "${loc.claimName}"`);
      }
      return dir;
    } catch (err) {
      if (!isMissing(err) || probe === realVolume) throw err;
      rest = rest ? join(basename(probe), rest) : basename(probe);
      probe = dirname(probe);
    }
  }
}
