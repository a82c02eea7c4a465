import type { Digest } from '../oci/digest.js';

/** The ecosystems the catalogers know; each is also the purl type. */
export type PackageType = 'deb' | 'apk' | 'npm' | 'pypi' | 'golang';

/**
 * One package found in an image. `layer` is the digest (compressed, as the manifest lists it) of
 * the layer that brought the package in: the lowest layer from which it survived unchanged.
 */
export interface SbomPackage {
  type: PackageType;
  name: string;
  version: string;
  purl: string;
  /** License names or SPDX expressions as the package declares them; empty when unknown. */
  licenses: string[];
  layer: Digest;
  /** The file the package was read from, absolute inside the image. */
  path: string;
  /** Debian/Alpine architecture, when the database records one. */
  arch?: string;
  /** The source package (Debian `Source:`, Alpine `o:`), when it differs from the name. */
  source?: string;
  /** Which cataloger found it: `dpkg-db`, `apk-db`, `npm-package`, `npm-lock`, `python-metadata`, `go-buildinfo`. */
  foundBy: string;
}

/** The distribution, from `/etc/os-release` (or `/usr/lib/os-release`). */
export interface Distro {
  id: string;
  versionId?: string;
  prettyName?: string;
}

/** What was catalogued and where it came from. */
export interface SbomImage {
  /** Transport-qualified name as given (`docker://…`, `oci:…`). */
  name: string;
  /** Repository name without transport, tag or digest, for purls and statement subjects; may be empty. */
  repository: string;
  /** Digest of the image manifest that was catalogued (the platform's, for an index). */
  digest: Digest;
  /** Digest of what the name points at (the index, for a multi-platform image). */
  topDigest: Digest;
  mediaType: string;
  size: number;
  platform: string;
  layers: Digest[];
}

export interface Catalog {
  image: SbomImage;
  distro?: Distro;
  packages: SbomPackage[];
}
