import { referenceName } from '../oci/reference.js';
import { DockerReference } from '../transports/docker.js';
import { parseImageName } from '../transports/index.js';
import type { TransportContext, TransportReference } from '../transports/types.js';
import { InvalidInputError } from '../util/errors.js';
import { VERSION } from '../util/version.js';
import { catalogImage } from './catalog.js';
import { CYCLONEDX_MEDIA_TYPE, toCycloneDx } from './cyclonedx.js';
import { SPDX_MEDIA_TYPE, toSpdx } from './spdx.js';
import type { Catalog } from './types.js';

export type { Catalog, SbomPackage, SbomImage, Distro, PackageType } from './types.js';
export { catalogImage } from './catalog.js';

export type SbomFormat = 'spdx-json' | 'cyclonedx-json';
export const SBOM_FORMATS: readonly SbomFormat[] = ['spdx-json', 'cyclonedx-json'];

/** in-toto predicate types for the two formats, as cosign's `--type spdxjson|cyclonedx` writes them. */
export const SBOM_PREDICATE_TYPES: Record<SbomFormat, string> = {
  'spdx-json': 'https://spdx.dev/Document',
  'cyclonedx-json': 'https://cyclonedx.org/bom',
};

export interface SbomOptions {
  format?: SbomFormat;
  platform?: string;
  ctx?: TransportContext;
  /** Document creation time (default now); fix it (e.g. SOURCE_DATE_EPOCH) for reproducible SBOMs. */
  created?: Date;
  signal?: AbortSignal;
}

export interface SbomResult {
  catalog: Catalog;
  format: SbomFormat;
  mediaType: string;
  predicateType: string;
  document: Record<string, unknown>;
}

export function parseSbomFormat(value: string): SbomFormat {
  const v = value.toLowerCase();
  if (v === 'spdx' || v === 'spdx-json' || v === 'spdxjson') return 'spdx-json';
  if (v === 'cyclonedx' || v === 'cyclonedx-json' || v === 'cdx') return 'cyclonedx-json';
  throw new InvalidInputError(`unknown SBOM format "${value}": expected ${SBOM_FORMATS.join(' or ')}`);
}

/** The repository an image name belongs to, for purls and in-toto subjects (empty for local layouts without one). */
function repositoryOf(ref: TransportReference): string {
  return ref instanceof DockerReference ? referenceName(ref.ref) : '';
}

/** Catalogs the image an image name points at and writes the SBOM document for it. */
export async function generateSbom(image: string | TransportReference, opts: SbomOptions = {}): Promise<SbomResult> {
  const ref = typeof image === 'string' ? parseImageName(image) : image;
  const format = opts.format ?? 'spdx-json';
  const src = await ref.newSource(opts.ctx);
  let catalog: Catalog;
  try {
    const found = await catalogImage(src, { platform: opts.platform, signal: opts.signal });
    catalog = { ...found, image: { ...found.image, name: ref.toString(), repository: repositoryOf(ref) } };
  } finally {
    await src.close();
  }
  const docOpts = { created: opts.created, toolVersion: VERSION };
  const document = (format === 'spdx-json' ? toSpdx(catalog, docOpts) : toCycloneDx(catalog, docOpts)) as unknown as Record<string, unknown>;
  return {
    catalog,
    format,
    mediaType: format === 'spdx-json' ? SPDX_MEDIA_TYPE : CYCLONEDX_MEDIA_TYPE,
    predicateType: SBOM_PREDICATE_TYPES[format],
    document,
  };
}
