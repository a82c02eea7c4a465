import { shortHash, uuidFrom } from './ids.js';
import { spdxExpression, spdxId } from './licenses.js';
import { imagePurl } from './spdx.js';
import type { Catalog, SbomPackage } from './types.js';
import { rfc3339Seconds } from '../util/time.js';

export const CYCLONEDX_MEDIA_TYPE = 'application/vnd.cyclonedx+json';

type LicenseChoice = { license: { id: string } | { name: string } } | { expression: string };

export interface CycloneDxComponent {
  type: 'library' | 'container' | 'application' | 'operating-system';
  'bom-ref': string;
  name: string;
  version?: string;
  purl?: string;
  licenses?: LicenseChoice[];
  properties?: { name: string; value: string }[];
  evidence?: { occurrences: { location: string }[] };
}

export interface CycloneDxBom {
  $schema: string;
  bomFormat: 'CycloneDX';
  specVersion: '1.6';
  serialNumber: string;
  version: 1;
  metadata: {
    timestamp: string;
    tools: { components: { type: 'application'; name: string; version: string }[] };
    component: CycloneDxComponent;
  };
  components: CycloneDxComponent[];
}

/**
 * Licenses in CycloneDX's `licenseChoice`: either one SPDX expression (when the package declared a
 * compound one we fully understand) or a list of licenses, each by SPDX `id` when it has one and by
 * `name` otherwise (the schema checks ids against the SPDX list, so an unknown name is never an id).
 */
function licenseChoice(licenses: string[]): LicenseChoice[] | undefined {
  if (licenses.length === 0) return undefined;
  if (licenses.length === 1) {
    const expr = spdxExpression(licenses[0]!);
    if (expr && /\s(AND|OR)\s/.test(expr)) return [{ expression: expr }];
  }
  const out: LicenseChoice[] = [];
  const seen = new Set<string>();
  for (const l of licenses) {
    const id = spdxId(l);
    const key = id ?? `name:${l}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ license: id ? { id } : { name: l } });
  }
  return out;
}

function component(p: SbomPackage): CycloneDxComponent {
  const c: CycloneDxComponent = {
    type: 'library',
    'bom-ref': `${p.purl}#${shortHash(`${p.layer}${p.path}`)}`,
    name: p.name,
    version: p.version,
    purl: p.purl,
  };
  const licenses = licenseChoice(p.licenses);
  if (licenses) c.licenses = licenses;
  c.properties = [
    { name: 'stevedore:layerDigest', value: p.layer },
    { name: 'stevedore:foundBy', value: p.foundBy },
    { name: 'stevedore:location', value: p.path },
  ];
  c.evidence = { occurrences: [{ location: p.path }] };
  return c;
}

/** CycloneDX 1.6 JSON: the image is `metadata.component` (type container), each package a library component. */
export function toCycloneDx(catalog: Catalog, opts: { created?: Date; toolVersion: string }): CycloneDxBom {
  const timestamp = rfc3339Seconds(opts.created);
  const name = catalog.image.repository || catalog.image.name;
  return {
    $schema: 'http://cyclonedx.org/schema/bom-1.6.schema.json',
    bomFormat: 'CycloneDX',
    specVersion: '1.6',
    serialNumber: `urn:uuid:${uuidFrom(`cyclonedx:${catalog.image.digest}:${timestamp}`)}`,
    version: 1,
    metadata: {
      timestamp,
      tools: { components: [{ type: 'application', name: 'stevedore', version: opts.toolVersion }] },
      component: {
        type: 'container',
        'bom-ref': imagePurl(catalog),
        name,
        version: catalog.image.digest,
        purl: imagePurl(catalog),
        properties: [
          { name: 'stevedore:platform', value: catalog.image.platform },
          ...catalog.image.layers.map((l, i) => ({ name: `stevedore:layer:${i}`, value: l })),
          ...(catalog.distro
            ? [{ name: 'stevedore:distro', value: catalog.distro.versionId ? `${catalog.distro.id}-${catalog.distro.versionId}` : catalog.distro.id }]
            : []),
        ],
      },
    },
    components: catalog.packages.map(component),
  };
}
