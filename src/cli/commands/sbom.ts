import type { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import { parseSbomFormat, generateSbom, type Catalog, type SbomFormat } from '../../sbom/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { addSourceOptions, contextFrom } from '../options.js';
import { signalOnInterrupt } from '../signals.js';

type OutputFormat = SbomFormat | 'table';

/** The document formats, and `table`: one line per package for people. */
function parseOutputFormat(value: string): OutputFormat {
  return value === 'table' ? 'table' : parseSbomFormat(value);
}

/** NAME VERSION TYPE LAYER columns, the layer digest shortened as podman shortens image ids. */
function table(catalog: Catalog): string {
  const rows = [['NAME', 'VERSION', 'TYPE', 'LAYER'], ...catalog.packages.map((p) => [p.name, p.version, p.type, p.layer.slice(7, 19)])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

interface SbomFlags {
  format: OutputFormat;
  output?: string;
  platform?: string;
  attach?: boolean;
  key?: string;
  timestamp?: string;
  creds?: string;
  tlsVerify?: boolean;
  authfile?: string;
}

/** Document time: --timestamp, else SOURCE_DATE_EPOCH (reproducible builds), else now. */
function createdAt(flag: string | undefined): Date | undefined {
  const v = flag ?? process.env.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidInputError(`timestamp must be Unix seconds, got "${v}"`);
  return new Date(n * 1000);
}

export function registerSbom(program: Command): void {
  addSourceOptions(
    program
      .command('sbom')
      .description('list the packages in an image (dpkg, apk, npm, Python, Go binaries) as SPDX 2.3 or CycloneDX 1.6 JSON')
      .argument('<image>', 'image name, e.g. docker://localhost:5000/app:1.0, oci:/dir:tag')
      .option('--format <format>', 'spdx-json, cyclonedx-json, or table (a package list to read)', parseOutputFormat, 'spdx-json' as OutputFormat)
      .option('-o, --output <file>', 'write the SBOM to this file (default: standard output)')
      .option('--platform <os/arch[/variant]>', "which image of an index to catalog (default: this host's)")
      .option('--timestamp <seconds>', 'document creation time as Unix seconds (default: $SOURCE_DATE_EPOCH or now)')
      .option('--attach', 'sign the SBOM as an in-toto attestation and attach it to the image in its registry')
      .option('--key <file>', 'private key (PEM; cosign-encrypted keys take $COSIGN_PASSWORD) for --attach'),
  ).action(async (image: string, o: SbomFlags) => {
    const signal = signalOnInterrupt();
    {
      const ctx = contextFrom(o);
      const created = createdAt(o.timestamp);
      if (o.attach) {
        if (!o.key) throw new InvalidInputError('--attach needs --key');
        if (o.format === 'table') throw new InvalidInputError('--attach needs a document format: spdx-json or cyclonedx-json');
        const format = o.format;
        const { attachSbom } = await import('../../attest/attach.js');
        const output = o.output;
        const res = await attachSbom(image, {
          key: o.key,
          format,
          platform: o.platform,
          ctx,
          created,
          signal,
          onSbom: output ? (sbom) => writeFile(output, JSON.stringify(sbom.document, null, 2) + '\n') : undefined,
        });
        process.stdout.write(JSON.stringify(res, null, 2) + '\n');
        return;
      }
      const sbom = await generateSbom(image, { format: o.format === 'table' ? 'spdx-json' : o.format, platform: o.platform, ctx, created, signal });
      const text = o.format === 'table' ? table(sbom.catalog) : JSON.stringify(sbom.document, null, 2) + '\n';
      if (o.output) await writeFile(o.output, text);
      else process.stdout.write(text);
    }
  });
}
