import type { FoundPackage } from './catalogers/found.js';
import { formatPurl, golangPurl, normalizePypiName, npmPurl } from './purl.js';
import type { Distro } from './types.js';

/**
 * The purl of a catalogued package. Debian and Alpine purls name the distribution as namespace
 * and carry `arch` and `distro=<id>-<version>` qualifiers (and `upstream` for the source package),
 * so the same package name from two distributions stays distinct.
 */
export function packagePurl(p: FoundPackage, distro: Distro | undefined): string {
  const distroQ = distro ? (distro.versionId ? `${distro.id}-${distro.versionId}` : distro.id) : undefined;
  switch (p.type) {
    case 'deb':
      return formatPurl({
        type: 'deb',
        namespace: distro?.id ?? 'debian',
        name: p.name,
        version: p.version,
        qualifiers: { arch: p.arch, distro: distroQ, upstream: p.source },
      });
    case 'apk':
      return formatPurl({
        type: 'apk',
        namespace: distro?.id ?? 'alpine',
        name: p.name,
        version: p.version,
        qualifiers: { arch: p.arch, distro: distroQ, upstream: p.source },
      });
    case 'npm':
      return npmPurl(p.name, p.version);
    case 'pypi':
      return formatPurl({ type: 'pypi', name: normalizePypiName(p.name), version: p.version });
    case 'golang':
      // The standard library's purl carries the bare version (`1.22.1`), as Go tooling and syft write it.
      if (p.name === 'stdlib') return formatPurl({ type: 'golang', name: 'stdlib', version: p.version.replace(/^go/, '') });
      return golangPurl(p.name, p.version);
  }
}
