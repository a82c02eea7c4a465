import type { PackageType } from './types.js';

/**
 * Package URLs (github.com/package-url/purl-spec). Each part is percent-encoded; `:` and `+` stay
 * readable in versions (Debian epochs and revisions), as the Go and Java reference implementations
 * write them, so our purls compare equal to other tools' for the same package.
 */
function enc(s: string): string {
  return encodeURIComponent(s).replace(/%3A/gi, ':').replace(/%2B/gi, '+');
}

export interface PurlParts {
  type: PackageType | 'oci';
  namespace?: string;
  name: string;
  version?: string;
  qualifiers?: Record<string, string | undefined>;
}

export function formatPurl(p: PurlParts): string {
  let out = `pkg:${p.type}/`;
  if (p.namespace)
    out +=
      p.namespace
        .split('/')
        .filter((s) => s !== '')
        .map(enc)
        .join('/') + '/';
  out += enc(p.name);
  if (p.version) out += `@${enc(p.version)}`;
  const q = Object.entries(p.qualifiers ?? {})
    .filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (q.length > 0) out += '?' + q.map(([k, v]) => `${k.toLowerCase()}=${enc(v)}`).join('&');
  return out;
}

/** PEP 503 name normalisation, which the pypi purl type requires. */
export function normalizePypiName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

/** `pkg:golang/github.com/org/mod@v1.2.3`: the module path's last element is the name. */
export function golangPurl(modulePath: string, version: string): string {
  const parts = modulePath.split('/');
  const name = parts.pop()!;
  return formatPurl({ type: 'golang', namespace: parts.join('/'), name, version });
}

/** `pkg:npm/%40scope/name@1.0.0` for scoped packages. */
export function npmPurl(name: string, version: string): string {
  if (name.startsWith('@') && name.includes('/')) {
    const slash = name.indexOf('/');
    return formatPurl({ type: 'npm', namespace: name.slice(0, slash), name: name.slice(slash + 1), version });
  }
  return formatPurl({ type: 'npm', name, version });
}
