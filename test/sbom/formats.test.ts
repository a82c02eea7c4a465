/**
 * SPDX 2.3 and CycloneDX 1.6 documents for a real image, checked against the rules of the two
 * JSON schemas that matter for what we write: required fields, identifier and date patterns,
 * `additionalProperties: false` on the objects we fill, enumerations, and that every reference
 * inside a document (relationships, LicenseRefs, bom-refs) resolves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSbom, type SbomResult } from '../../src/sbom/index.js';
import { spdxExpression } from '../../src/sbom/licenses.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { copyrightItems, DEB_PACKAGES, dpkgStanzas, pythonMetadata } from './content.js';
import { buildLayeredImage, type BuiltImage } from './layered-image.js';

const temps = new TempDirs();
let image: BuiltImage;
let spdx: SbomResult;
let cdx: SbomResult;
const created = new Date('2026-02-03T04:05:06.789Z');

beforeAll(async () => {
  const py = await pythonMetadata();
  image = await buildLayeredImage(await temps.make('sbom-formats'), 'f', [
    [
      { path: 'etc/os-release', from: '/etc/os-release' },
      { path: 'var/lib/dpkg/status', content: await dpkgStanzas(DEB_PACKAGES) },
      ...(await copyrightItems(DEB_PACKAGES)),
    ],
    py.map((p) => p.item),
  ]);
  [spdx, cdx] = await Promise.all([
    generateSbom(image.ociRef, { format: 'spdx-json', created }),
    generateSbom(image.ociRef, { format: 'cyclonedx-json', created }),
  ]);
});
afterAll(() => temps.cleanup());

const DATE = /^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T(([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]|23:59:60)Z$/;

function onlyKeys(obj: object, allowed: string[], where: string): void {
  for (const k of Object.keys(obj)) expect(allowed, `${where}: unexpected property "${k}"`).toContain(k);
}

describe('SPDX 2.3 JSON', () => {
  it('has the document fields the schema requires, in their formats', () => {
    const d = spdx.document as Record<string, any>;
    onlyKeys(
      d,
      [
        '$schema',
        'SPDXID',
        'annotations',
        'comment',
        'creationInfo',
        'dataLicense',
        'externalDocumentRefs',
        'hasExtractedLicensingInfos',
        'name',
        'spdxVersion',
        'documentNamespace',
        'documentDescribes',
        'packages',
        'files',
        'snippets',
        'relationships',
      ],
      'document',
    );
    expect(d.spdxVersion).toBe('SPDX-2.3');
    expect(d.dataLicense).toBe('CC0-1.0');
    expect(d.SPDXID).toBe('SPDXRef-DOCUMENT');
    expect(typeof d.name).toBe('string');
    expect(() => new URL(d.documentNamespace)).not.toThrow();
    onlyKeys(d.creationInfo, ['comment', 'created', 'creators', 'licenseListVersion'], 'creationInfo');
    expect(d.creationInfo.created).toMatch(DATE);
    expect(d.creationInfo.created).toBe('2026-02-03T04:05:06Z');
    expect(d.creationInfo.creators.length).toBeGreaterThan(0);
    for (const c of d.creationInfo.creators) expect(c).toMatch(/^(Tool|Organization|Person): \S/);
  });

  it('describes every package with a valid SPDXID, purl reference, license expression and its layer', () => {
    const d = spdx.document as Record<string, any>;
    const ids = new Set<string>();
    for (const p of d.packages) {
      onlyKeys(
        p,
        [
          'SPDXID',
          'annotations',
          'attributionTexts',
          'builtDate',
          'checksums',
          'comment',
          'copyrightText',
          'description',
          'downloadLocation',
          'externalRefs',
          'filesAnalyzed',
          'hasFiles',
          'homepage',
          'licenseComments',
          'licenseConcluded',
          'licenseDeclared',
          'licenseInfoFromFiles',
          'name',
          'originator',
          'packageFileName',
          'packageVerificationCode',
          'primaryPackagePurpose',
          'releaseDate',
          'sourceInfo',
          'summary',
          'supplier',
          'validUntilDate',
          'versionInfo',
        ],
        `package ${p.name}`,
      );
      expect(p.SPDXID).toMatch(/^SPDXRef-[a-zA-Z0-9.-]+$/);
      expect(ids.has(p.SPDXID), `duplicate ${p.SPDXID}`).toBe(false);
      ids.add(p.SPDXID);
      expect(typeof p.name).toBe('string');
      expect(typeof p.downloadLocation).toBe('string');
      expect(p.filesAnalyzed).toBe(false);
      expect([
        'OTHER',
        'INSTALL',
        'ARCHIVE',
        'FIRMWARE',
        'APPLICATION',
        'FRAMEWORK',
        'LIBRARY',
        'CONTAINER',
        'SOURCE',
        'DEVICE',
        'OPERATING-SYSTEM',
        'FILE',
      ]).toContain(p.primaryPackagePurpose);
      for (const r of p.externalRefs) {
        onlyKeys(r, ['comment', 'referenceCategory', 'referenceLocator', 'referenceType'], 'externalRef');
        expect(['OTHER', 'PERSISTENT-ID', 'PERSISTENT_ID', 'SECURITY', 'PACKAGE-MANAGER', 'PACKAGE_MANAGER']).toContain(r.referenceCategory);
        expect(r.referenceLocator).toMatch(/^pkg:[a-z]+\//);
      }
    }
    const refs = new Set((d.hasExtractedLicensingInfos ?? []).map((l: { licenseId: string }) => l.licenseId));
    for (const l of d.hasExtractedLicensingInfos ?? []) {
      onlyKeys(l, ['comment', 'crossRefs', 'extractedText', 'licenseId', 'name', 'seeAlsos'], 'extracted license');
      expect(l.licenseId).toMatch(/^LicenseRef-[a-zA-Z0-9.-]+$/);
      expect(typeof l.extractedText).toBe('string');
    }
    const debs = d.packages.filter((p: any) => p.externalRefs[0].referenceLocator.startsWith('pkg:deb/'));
    expect(debs).toHaveLength(DEB_PACKAGES.length);
    for (const p of d.packages) {
      if (p.licenseDeclared === 'NOASSERTION') continue;
      // Every term of the expression is a known SPDX id or a LicenseRef the document defines.
      for (const term of p.licenseDeclared.split(/\s+(?:AND|OR)\s+/)) {
        const t = term.replace(/[()]/g, '');
        if (t.startsWith('LicenseRef-')) expect(refs, `${p.name}: ${t}`).toContain(t);
        else expect(spdxExpression(t), `${p.name}: ${t}`).toBe(t);
      }
    }
    expect(debs.find((p: any) => p.name === 'zlib1g').licenseDeclared).toBe('Zlib');
    expect(debs.find((p: any) => p.name === 'bash').licenseDeclared).toContain('GPL-3.0-or-later');
    for (const p of d.packages.slice(1)) expect(p.sourceInfo).toMatch(new RegExp(`layer (${image.layers.map((l) => l.digest).join('|')}), file /`));
  });

  it('relates the document to the image and the image to every package', () => {
    const d = spdx.document as Record<string, any>;
    const ids = new Set(d.packages.map((p: { SPDXID: string }) => p.SPDXID));
    const root = d.packages[0];
    expect(root.primaryPackagePurpose).toBe('CONTAINER');
    expect(root.versionInfo).toBe(image.manifest.digest);
    expect(d.relationships).toContainEqual({ spdxElementId: 'SPDXRef-DOCUMENT', relatedSpdxElement: root.SPDXID, relationshipType: 'DESCRIBES' });
    for (const r of d.relationships) {
      onlyKeys(r, ['comment', 'relatedSpdxElement', 'relationshipType', 'spdxElementId'], 'relationship');
      if (r.spdxElementId !== 'SPDXRef-DOCUMENT') expect(ids).toContain(r.spdxElementId);
      expect(ids).toContain(r.relatedSpdxElement);
    }
    expect(d.relationships.filter((r: any) => r.relationshipType === 'CONTAINS')).toHaveLength(d.packages.length - 1);
  });

  it('is the same document for the same image and time (reproducible)', async () => {
    const again = await generateSbom(image.ociRef, { format: 'spdx-json', created });
    expect(JSON.stringify(again.document)).toBe(JSON.stringify(spdx.document));
  });
});

describe('CycloneDX 1.6 JSON', () => {
  it('has the BOM fields the schema requires, in their formats', () => {
    const b = cdx.document as Record<string, any>;
    expect(b.bomFormat).toBe('CycloneDX');
    expect(b.specVersion).toBe('1.6');
    expect(b.serialNumber).toMatch(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(b.version).toBe(1);
    expect(b.metadata.timestamp).toBe('2026-02-03T04:05:06Z');
    expect(b.metadata.tools.components[0]).toMatchObject({ type: 'application', name: 'stevedore' });
    expect(b.metadata.component).toMatchObject({ type: 'container', version: image.manifest.digest });
  });

  it('lists every package as a library component with a unique bom-ref, purl, licenses and its layer', () => {
    const b = cdx.document as Record<string, any>;
    expect(b.components).toHaveLength(spdx.catalog.packages.length);
    const refs = new Set<string>([b.metadata.component['bom-ref']]);
    const layers = new Set(image.layers.map((l) => l.digest));
    for (const c of b.components) {
      onlyKeys(
        c,
        [
          'type',
          'mime-type',
          'bom-ref',
          'supplier',
          'manufacturer',
          'authors',
          'author',
          'publisher',
          'group',
          'name',
          'version',
          'description',
          'scope',
          'hashes',
          'licenses',
          'copyright',
          'cpe',
          'purl',
          'omniborId',
          'swhid',
          'swid',
          'modified',
          'pedigree',
          'externalReferences',
          'properties',
          'components',
          'evidence',
          'releaseNotes',
          'modelCard',
          'data',
          'cryptoProperties',
          'tags',
          'signature',
        ],
        `component ${c.name}`,
      );
      expect(c.type).toBe('library');
      expect(typeof c.name).toBe('string');
      expect(refs.has(c['bom-ref'])).toBe(false);
      refs.add(c['bom-ref']);
      expect(c.purl).toMatch(/^pkg:[a-z]+\//);
      expect(layers).toContain(c.properties.find((p: any) => p.name === 'stevedore:layerDigest').value);
      expect(c.evidence.occurrences[0].location).toMatch(/^\//);
      if (c.licenses) {
        // licenseChoice: either licenses (each by id or name) or exactly one expression.
        const exprs = c.licenses.filter((l: any) => 'expression' in l);
        if (exprs.length > 0) expect(c.licenses).toHaveLength(1);
        for (const l of c.licenses) {
          if ('expression' in l) continue;
          onlyKeys(l.license, ['id', 'name', 'acknowledgement', 'text', 'url', 'licensing', 'properties', 'bom-ref'], 'license');
          expect(Boolean(l.license.id) !== Boolean(l.license.name)).toBe(true);
          if (l.license.id) expect(spdxExpression(l.license.id)).toBe(l.license.id);
        }
      }
    }
    const zlib = b.components.find((c: any) => c.name === 'zlib1g');
    expect(zlib.licenses).toEqual([{ license: { id: 'Zlib' } }]);
  });
});
