import type { Digest } from '../oci/digest.js';
import { formatPlatform, type Platform } from '../oci/platform.js';
import type { ImageSource } from '../transports/types.js';
import { rootLogger } from '../util/log.js';
import { parseApkInstalled, isApkDatabase } from './catalogers/apk.js';
import { copyrightPackage, docLink, isDpkgDatabase, parseDebianCopyright, parseDpkgStatus } from './catalogers/dpkg.js';
import type { Finding, FoundPackage } from './catalogers/found.js';
import { GoBuildInfoScanner, goPackages } from './catalogers/golang.js';
import { isNpmLockfile, isNpmPackageJson, parseNpmLockfile, parseNpmPackageJson } from './catalogers/npm.js';
import { isOsRelease, parseOsRelease } from './catalogers/os-release.js';
import { isPythonMetadata, parsePythonMetadata } from './catalogers/python.js';
import { resolveImage } from './image-source.js';
import { walkLayer, type WalkEntry } from './layer-walk.js';
import { packagePurl } from './package-purl.js';
import type { Catalog, Distro, SbomPackage } from './types.js';

/** Metadata files are small; a bigger one is hostile or broken and is skipped (logged), not buffered. */
const MAX_DB_BYTES = 32 * 1024 * 1024;
const MAX_META_BYTES = 1024 * 1024;
/** Some copyright files (Boost's) run to megabytes of license text. */
const MAX_COPYRIGHT_BYTES = 16 * 1024 * 1024;

export interface CatalogOptions {
  /** For an index: which platform's image (default: the host's). */
  platform?: string;
  signal?: AbortSignal;
}

type Parser = { parse: (text: string, path: string) => Finding | undefined; max: number };

/** Which parser reads a file, by its path; undefined for files no cataloger looks at. */
function parserFor(path: string, platform: Platform): Parser | undefined {
  if (isDpkgDatabase(path)) return { max: MAX_DB_BYTES, parse: (t) => ({ kind: 'packages', packages: parseDpkgStatus(t) }) };
  if (isApkDatabase(path)) return { max: MAX_DB_BYTES, parse: (t) => ({ kind: 'packages', packages: parseApkInstalled(t) }) };
  if (isNpmPackageJson(path)) return { max: MAX_META_BYTES, parse: (t) => ({ kind: 'packages', packages: parseNpmPackageJson(t) }) };
  if (isNpmLockfile(path)) return { max: MAX_DB_BYTES, parse: (t) => ({ kind: 'packages', packages: parseNpmLockfile(t, platform) }) };
  if (isPythonMetadata(path)) return { max: MAX_META_BYTES, parse: (t) => ({ kind: 'packages', packages: parsePythonMetadata(t) }) };
  if (isOsRelease(path)) {
    return {
      max: MAX_META_BYTES,
      parse: (t) => {
        const d = parseOsRelease(t);
        return d ? { kind: 'os-release', distro: d } : undefined;
      },
    };
  }
  const pkg = copyrightPackage(path);
  if (pkg) return { max: MAX_COPYRIGHT_BYTES, parse: (t) => ({ kind: 'copyright', pkg, licenses: parseDebianCopyright(t) }) };
  return undefined;
}

/** Reads all of an entry's data, keeping at most `max` bytes; undefined when there was more. */
async function readCapped(data: AsyncIterable<Buffer>, max: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let n = 0;
  let over = false;
  for await (const chunk of data) {
    n += chunk.length;
    if (n > max) over = true;
    if (!over) chunks.push(chunk);
  }
  return over ? undefined : Buffer.concat(chunks);
}

interface Located {
  finding: Finding;
  layer: Digest;
}

const pkgKey = (p: FoundPackage): string => `${p.type}\0${p.name}\0${p.version}\0${p.arch ?? ''}`;

/**
 * The file system the layers make, kept only as far as the catalogers care: path → finding, with
 * each layer's whiteouts, opaque directories and overwrites applied to the layers below it, as an
 * unpacker would apply them. A package removed by a later layer (its file deleted or rewritten
 * without it) is therefore gone.
 */
class FindingTree {
  readonly #files = new Map<string, Located>();

  /** Applies one layer's effects: first its deletions of lower content, then its own files. */
  applyLayer(layer: Digest, changes: { written: Set<string>; whiteouts: string[]; opaques: string[]; found: Map<string, Finding> }): void {
    const previous = new Map<string, Located>();
    for (const path of changes.written) {
      const old = this.#files.get(path);
      if (old) {
        previous.set(path, old);
        this.#files.delete(path);
      }
    }
    for (const w of changes.whiteouts) this.#deleteBelow(w, true);
    for (const o of changes.opaques) this.#deleteBelow(o, false);
    for (const [path, finding] of changes.found) {
      const old = previous.get(path);
      if (finding.kind === 'packages') {
        // A rewritten database (apt-get install in a later layer) keeps each unchanged package's origin.
        const earlier = new Map<string, Digest>();
        if (old?.finding.kind === 'packages') for (const p of old.finding.packages) earlier.set(pkgKey(p), p.layer ?? old.layer);
        for (const p of finding.packages) p.layer = earlier.get(pkgKey(p)) ?? layer;
      }
      this.#files.set(path, { finding, layer });
    }
  }

  #deleteBelow(path: string, self: boolean): void {
    const prefix = path === '' ? '' : `${path}/`;
    for (const key of [...this.#files.keys()]) {
      if ((self && key === path) || key.startsWith(prefix)) this.#files.delete(key);
    }
  }

  entries(): IterableIterator<[string, Located]> {
    return this.#files.entries();
  }
}

/**
 * Catalogs the packages of an image read through any transport. Layers are read one after the
 * other as streams: only metadata files (package databases, package.json, METADATA, os-release,
 * copyright files) are held in memory, capped, and executables pass through the Go build-info
 * scanner as they stream.
 */
export async function catalogImage(
  src: ImageSource,
  opts: CatalogOptions = {},
): Promise<Omit<Catalog, 'image'> & { image: Omit<Catalog['image'], 'name' | 'repository'> }> {
  const log = rootLogger.child({ image: src.name });
  const { top, raw, manifest, platform } = await resolveImage(src, opts);
  const tree = new FindingTree();
  for (const desc of manifest.layers) {
    const written = new Set<string>();
    const whiteouts: string[] = [];
    const opaques: string[] = [];
    const found = new Map<string, Finding>();
    const visit = async (entry: WalkEntry, data: AsyncIterable<Buffer>): Promise<void> => {
      switch (entry.kind) {
        case 'whiteout':
          whiteouts.push(entry.path);
          return;
        case 'opaque':
          opaques.push(entry.path);
          return;
        case 'directory':
          return;
        case 'symlink': {
          written.add(entry.path);
          const link = docLink(entry.path, entry.target);
          if (link) found.set(entry.path, { kind: 'doc-link', ...link });
          return;
        }
        case 'other':
          written.add(entry.path);
          return;
      }
      written.add(entry.path);
      const parser = parserFor(entry.path, platform);
      if (parser) {
        const bytes = await readCapped(data, parser.max);
        if (!bytes) {
          log.warn({ path: entry.path, layer: desc.digest, max: parser.max }, 'metadata file too large; skipped');
          return;
        }
        const finding = parser.parse(bytes.toString('utf8'), entry.path);
        if (finding) found.set(entry.path, finding);
        return;
      }
      if ((entry.mode & 0o111) !== 0 && entry.size >= 64) {
        const scanner = new GoBuildInfoScanner();
        for await (const chunk of data) if (!scanner.done) scanner.push(chunk);
        const info = scanner.finish();
        if (info) found.set(entry.path, { kind: 'packages', packages: goPackages(info) });
        else if (scanner.oldFormat) log.info({ path: entry.path }, 'Go binary older than 1.18: build info not read');
      }
    };
    const stream = await src.getBlob(desc, { signal: opts.signal });
    await walkLayer(stream, desc.mediaType, visit, opts.signal);
    tree.applyLayer(desc.digest, { written, whiteouts, opaques, found });
    log.debug({ layer: desc.digest, files: found.size }, 'layer catalogued');
  }

  let distro: Distro | undefined;
  const copyright = new Map<string, string[]>();
  const docLinks = new Map<string, string>();
  for (const [path, { finding }] of tree.entries()) {
    if (finding.kind === 'os-release' && (distro === undefined || path === 'etc/os-release')) distro = finding.distro;
    if (finding.kind === 'copyright') copyright.set(finding.pkg, finding.licenses);
    if (finding.kind === 'doc-link') docLinks.set(finding.pkg, finding.target);
  }
  // A package whose doc directory is a link has its licenses in the target's copyright (links may chain).
  const debLicenses = (name: string): string[] => {
    let pkg: string | undefined = name;
    for (let hops = 0; pkg !== undefined && hops < 8; hops++) {
      const l = copyright.get(pkg);
      if (l) return l;
      pkg = docLinks.get(pkg);
    }
    return [];
  };
  const packages: SbomPackage[] = [];
  const byPurl = new Map<string, SbomPackage>();
  const sorted = [...tree.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [path, { finding, layer }] of sorted) {
    if (finding.kind !== 'packages') continue;
    for (const p of finding.packages) {
      const licenses = p.type === 'deb' && p.licenses.length === 0 ? debLicenses(p.name) : p.licenses;
      const pkg: SbomPackage = { ...p, licenses, layer: p.layer ?? layer, path: `/${path}`, purl: packagePurl(p, distro) };
      // The same package found twice (a lockfile and the installed package.json, one Go module in
      // two binaries) is listed once, from the lowest layer.
      const seen = byPurl.get(pkg.purl);
      if (seen) {
        if (manifest.layers.findIndex((l) => l.digest === pkg.layer) < manifest.layers.findIndex((l) => l.digest === seen.layer)) Object.assign(seen, pkg);
        if (seen.licenses.length === 0) seen.licenses = pkg.licenses;
        continue;
      }
      byPurl.set(pkg.purl, pkg);
      packages.push(pkg);
    }
  }
  packages.sort((a, b) => (a.type + a.name + a.version < b.type + b.name + b.version ? -1 : 1));
  return {
    image: {
      digest: raw.digest,
      topDigest: top.digest,
      mediaType: raw.mediaType,
      size: raw.bytes.length,
      platform: formatPlatform(platform),
      layers: manifest.layers.map((l) => l.digest),
    },
    distro,
    packages,
  };
}
