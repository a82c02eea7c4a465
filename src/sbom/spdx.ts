import { formatPurl } from './purl.js';
import { shortHash, uuidFrom } from './ids.js';
import { spdxExpression } from './licenses.js';
import type { Catalog, SbomPackage } from './types.js';
import { rfc3339Seconds } from '../util/time.js';

/** The subset of the SPDX 2.3 JSON document model this writer produces. */
export interface SpdxDocument {
  spdxVersion: 'SPDX-2.3';
  dataLicense: 'CC0-1.0';
  SPDXID: 'SPDXRef-DOCUMENT';
  name: string;
  documentNamespace: string;
  creationInfo: { created: string; creators: string[]; licenseListVersion?: string };
  packages: SpdxPackage[];
  relationships: { spdxElementId: string; relatedSpdxElement: string; relationshipType: string }[];
  hasExtractedLicensingInfos?: { licenseId: string; extractedText: string; name?: string }[];
}

export interface SpdxPackage {
  SPDXID: string;
  name: string;
  versionInfo?: string;
  downloadLocation: string;
  filesAnalyzed: false;
  licenseConcluded: string;
  licenseDeclared: string;
  copyrightText: string;
  sourceInfo?: string;
  primaryPackagePurpose?: string;
  externalRefs?: { referenceCategory: string; referenceType: string; referenceLocator: string }[];
}

export const SPDX_MEDIA_TYPE = 'application/spdx+json';

/** SPDX identifiers allow letters, digits, `.` and `-` only. */
function idPart(s: string): string {
  return (
    s
      .replace(/[^A-Za-z0-9.-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 64) || 'x'
  );
}

/** `pkg:oci/<name>@<digest>?repository_url=…`: how purl names a container image. */
export function imagePurl(catalog: Catalog): string {
  const repo = catalog.image.repository;
  const name = repo === '' ? 'image' : repo.slice(repo.lastIndexOf('/') + 1);
  return formatPurl({ type: 'oci', name, version: catalog.image.digest, qualifiers: { repository_url: repo || undefined } });
}

/**
 * SPDX 2.3 JSON: the image is the document's described package (purpose CONTAINER), which
 * CONTAINS one package per catalogued package. Each package's purl is its PACKAGE-MANAGER external
 * reference, and `sourceInfo` says which layer and file it was found in. License names that are
 * not SPDX identifiers become `LicenseRef-` entries, defined in `hasExtractedLicensingInfos` as
 * the spec requires.
 */
export function toSpdx(catalog: Catalog, opts: { created?: Date; toolVersion: string }): SpdxDocument {
  const created = rfc3339Seconds(opts.created);
  const imageName = catalog.image.repository || catalog.image.name;
  const rootId = `SPDXRef-DocumentRoot-Image-${idPart(imageName)}`;
  const refs = new Map<string, string>();
  const declared = (licenses: string[]): string => {
    if (licenses.length === 0) return 'NOASSERTION';
    const parts = licenses.map((l) => {
      const expr = spdxExpression(l);
      if (expr) return /\s/.test(expr) ? `(${expr})` : expr;
      const id = `LicenseRef-${idPart(l)}`;
      refs.set(id, l);
      return id;
    });
    const unique = [...new Set(parts)];
    return unique.length === 1 ? unique[0]!.replace(/^\((.*)\)$/, '$1') : unique.join(' AND ');
  };
  const pkgId = (p: SbomPackage): string => `SPDXRef-Package-${p.type}-${idPart(p.name)}-${shortHash(p.purl)}`;
  const root: SpdxPackage = {
    SPDXID: rootId,
    name: imageName,
    versionInfo: catalog.image.digest,
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    licenseConcluded: 'NOASSERTION',
    licenseDeclared: 'NOASSERTION',
    copyrightText: 'NOASSERTION',
    primaryPackagePurpose: 'CONTAINER',
    externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: imagePurl(catalog) }],
  };
  const packages: SpdxPackage[] = catalog.packages.map((p) => ({
    SPDXID: pkgId(p),
    name: p.name,
    versionInfo: p.version,
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    licenseConcluded: 'NOASSERTION',
    licenseDeclared: declared(p.licenses),
    copyrightText: 'NOASSERTION',
    sourceInfo: `acquired package info from ${p.foundBy}: layer ${p.layer}, file ${p.path}`,
    primaryPackagePurpose: p.type === 'golang' && p.name !== 'stdlib' ? 'LIBRARY' : p.type === 'deb' || p.type === 'apk' ? 'INSTALL' : 'LIBRARY',
    externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: p.purl }],
  }));
  const doc: SpdxDocument = {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: imageName,
    documentNamespace: `https://stevedore.dev/spdx/${encodeURIComponent(idPart(imageName))}-${uuidFrom(`spdx:${catalog.image.digest}:${created}`)}`,
    creationInfo: { created, creators: [`Tool: stevedore-${opts.toolVersion}`, 'Organization: Stevedore'] },
    packages: [root, ...packages],
    relationships: [
      { spdxElementId: 'SPDXRef-DOCUMENT', relatedSpdxElement: rootId, relationshipType: 'DESCRIBES' },
      ...packages.map((p) => ({ spdxElementId: rootId, relatedSpdxElement: p.SPDXID, relationshipType: 'CONTAINS' })),
    ],
  };
  if (refs.size > 0) {
    doc.hasExtractedLicensingInfos = [...refs].map(([licenseId, text]) => ({
      licenseId,
      name: text,
      extractedText: `License declared by the package as "${text}"`,
    }));
  }
  return doc;
}
