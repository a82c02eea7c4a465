import { InvalidInputError } from '../util/errors.js';
import { parseDirReference } from './dir.js';
import { parseDockerArchiveReference } from './docker-archive.js';
import { parseDockerReference } from './docker.js';
import { parseOciArchiveReference } from './oci-archive.js';
import { parseOciReference } from './oci.js';
import type { TransportReference } from './types.js';

export type { ImageDestination, ImageSource, TransportContext, TransportReference } from './types.js';

const TRANSPORTS: Record<string, (rest: string) => TransportReference> = {
  docker: parseDockerReference,
  oci: parseOciReference,
  'oci-archive': parseOciArchiveReference,
  dir: parseDirReference,
  'docker-archive': parseDockerArchiveReference,
};

export const TRANSPORT_NAMES = Object.keys(TRANSPORTS);

/**
 * Parses `transport:details` as skopeo does (`docker://host/repo:tag`, `oci:/dir:tag`,
 * `oci-archive:/file.tar`, `dir:/dir`, `docker-archive:/file.tar:name:tag`). A name with no known
 * transport prefix is read as a registry reference, so `stevedore inspect busybox` works like podman.
 */
export function parseImageName(name: string): TransportReference {
  const colon = name.indexOf(':');
  if (colon > 0) {
    const prefix = name.slice(0, colon);
    const parse = TRANSPORTS[prefix];
    if (parse) return parse(name.slice(colon + 1));
  }
  if (name.trim() === '') throw new InvalidInputError('empty image name');
  try {
    return parseDockerReference(`//${name}`);
  } catch (err) {
    throw new InvalidInputError(`${(err as Error).message} (transports: ${TRANSPORT_NAMES.map((t) => (t === 'docker' ? 'docker://' : `${t}:`)).join(', ')})`);
  }
}
