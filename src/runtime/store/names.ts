import { basename } from 'node:path';
import { formatReference, parseReference } from '../../oci/reference.js';
import { splitLayoutReference } from '../../transports/oci.js';

/**
 * Transport prefixes (as in transports/index.ts, which is not imported here: it loads every
 * transport and the registry client, which a run from the store never needs).
 */
const TRANSPORT_PREFIXES = ['docker', 'oci', 'oci-archive', 'dir', 'docker-archive'];

/** Where an image comes from and the name it has in the store. */
export interface ImageName {
  /** The index.json ref name in the store's layout, e.g. `docker.io/library/busybox:latest`. */
  storeName: string;
  /** The source to pull from, for parseImageName. */
  source: string;
}

function sanitize(s: string, fallback: string): string {
  const clean = s
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[-._]+|[-._]+$/g, '');
  return clean === '' ? fallback : clean;
}

/**
 * Normalises what a user typed. A registry reference (`busybox`, `docker://host/repo:tag`) is
 * stored under its full normalised name with `latest` implied; an image from another transport
 * (`oci:/dir:ref`, `oci-archive:/f.tar`, ...) is stored as `localhost/<name of the file>:<ref>`,
 * which is also what later `run`s of the same source look up.
 */
export function normaliseImageName(name: string): ImageName {
  const colon = name.indexOf(':');
  const prefix = colon > 0 ? name.slice(0, colon) : '';
  if (prefix !== '' && TRANSPORT_PREFIXES.includes(prefix) && prefix !== 'docker') {
    const rest = name.slice(colon + 1);
    // oci:, oci-archive: and dir: name a path (and maybe a ref); docker-archive: a path first.
    const split = prefix === 'dir' ? { path: rest } : prefix === 'docker-archive' ? { path: rest.split(':')[0]! } : splitLayoutReference(rest, prefix);
    const path = split.path;
    const refName = (split as { refName?: string }).refName;
    const source = name;
    const repo = sanitize(basename(path.replace(/\/+$/, '')), 'image');
    const tag = refName === undefined ? 'latest' : sanitize(refName, 'latest').slice(0, 128);
    return { storeName: `localhost/${repo}:${tag}`, source };
  }
  const plain = prefix === 'docker' ? name.slice(colon + 1).replace(/^\/\//, '') : name;
  const ref = parseReference(plain);
  if (!ref.tag && !ref.digest) ref.tag = 'latest';
  const storeName = formatReference(ref);
  return { storeName, source: `docker://${storeName}` };
}
