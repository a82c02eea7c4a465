import type { Command } from 'commander';
import { parseConfig } from '../../oci/config.js';
import { parseManifest, type ImageManifest, type RawManifest } from '../../oci/manifest.js';
import { hostPlatform, parsePlatform, platformMatches, formatPlatform } from '../../oci/platform.js';
import { parseImageName } from '../../transports/index.js';
import type { ImageSource } from '../../transports/types.js';
import { DockerReference } from '../../transports/docker.js';
import { referenceName } from '../../oci/reference.js';
import { NotFoundError } from '../../util/errors.js';
import { streamToBuffer } from '../../util/streams.js';
import { MAX_CONFIG_BYTES } from '../../oci/config.js';
import { addSourceOptions } from '../options.js';
import { addRetryOptions, readContext, renderTemplate, type RetryFlags } from '../transfer-options.js';

interface InspectOptions extends RetryFlags {
  raw?: boolean;
  format?: string;
  noCreds?: boolean;
  username?: string;
  password?: string;
  config?: boolean;
  tags?: boolean;
  platform?: string;
  creds?: string;
  tlsVerify?: boolean;
  authfile?: string;
  certDir?: string;
}

/** Resolves an index to the image for the wanted platform (host by default), as skopeo inspect does. */
async function resolveImage(src: ImageSource, top: RawManifest, platform?: string): Promise<{ raw: RawManifest; manifest: ImageManifest }> {
  const parsed = parseManifest(top.bytes, top.mediaType);
  if (parsed.kind === 'image') return { raw: top, manifest: parsed.manifest };
  const want = platform ? parsePlatform(platform) : hostPlatform();
  const hit = parsed.index.manifests.find((m) => platformMatches(m.platform, want));
  if (!hit) throw new NotFoundError(`${src.name} has no image for ${formatPlatform(want)}; use --raw to see the index or --platform`);
  const raw = await src.getManifest(hit.digest);
  return resolveImage(src, raw, platform);
}

/** A timestamp as Go's time.Time prints it in UTC (`2024-01-01 00:00:00 +0000 UTC`, fractions trimmed), as skopeo's templates show it. */
function goTime(created: string | undefined): string | undefined {
  const m = created ? /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/.exec(created) : null;
  if (!m || m[4] !== 'Z') return created;
  const frac = (m[3] ?? '').replace(/0+$/, '');
  return `${m[1]} ${m[2]}${frac ? `.${frac}` : ''} +0000 UTC`;
}

export function registerInspect(program: Command): void {
  const cmd = addSourceOptions(
    program
      .command('inspect')
      .description("show an image's manifest digest, tags, config and layers (like skopeo inspect)")
      .argument('<image>', 'image name, e.g. docker://localhost:5000/app:1.0, oci:/dir:tag')
      .option('--raw', 'print the raw manifest (or, with --config, the raw config)')
      .option('--config', 'print the image config')
      .option('-n, --no-tags', "do not list the repository's tags (saves a request)")
      .option('-f, --format <template>', 'print fields with a Go-template subset, e.g. "{{.Digest}}", "{{.Labels.version}}", "{{json .RepoTags}}"')
      .option('--no-creds', 'access the registry anonymously (no auth file either)')
      .option('--username <user>', 'user name for the registry (with --password)')
      .option('--password <password>', 'password for the registry (with --username)')
      .option('--platform <os/arch[/variant]>', "which image of an index to describe (default: this host's)")
      .option('--cert-dir <dir>', 'certificates for the registry: CA *.crt, client *.cert/*.key (containers-certs.d)'),
  );
  addRetryOptions(cmd).action(async (image: string, o: InspectOptions) => {
    const ref = parseImageName(image);
    const src = await ref.newSource(readContext(o));
    try {
      const top = await src.getManifest();
      if (o.raw && !o.config) {
        process.stdout.write(top.bytes);
        return;
      }
      const { raw, manifest } = await resolveImage(src, top, o.platform);
      const configBytes = await streamToBuffer(await src.getBlob(manifest.config), MAX_CONFIG_BYTES, 'image config');
      if (o.config) {
        process.stdout.write(o.raw ? configBytes : JSON.stringify(JSON.parse(configBytes.toString('utf8')), null, 4) + '\n');
        return;
      }
      const config = parseConfig(configBytes);
      const isRegistry = ref instanceof DockerReference;
      const tags = o.tags !== false && src.listTags ? await src.listTags() : undefined;
      const out = {
        Name: isRegistry ? referenceName(ref.ref) : undefined,
        Digest: top.digest,
        RepoTags: tags ?? [],
        Created: config.created,
        DockerVersion: (config as { docker_version?: string }).docker_version ?? '',
        Labels: config.config?.Labels ?? null,
        Architecture: config.architecture,
        Os: config.os,
        Variant: config.variant,
        Layers: manifest.layers.map((l) => l.digest),
        LayersData: manifest.layers.map((l) => ({ MIMEType: l.mediaType, Digest: l.digest, Size: l.size, Annotations: l.annotations ?? null })),
        Env: config.config?.Env ?? [],
        ManifestDigest: raw.digest !== top.digest ? raw.digest : undefined,
      };
      // Go's template prints a nil map as map[]: Labels is {} for a template, null in the JSON.
      const forTemplate = () => ({ ...out, Labels: out.Labels ?? {}, Created: goTime(config.created) });
      process.stdout.write(o.format !== undefined ? `${renderTemplate(o.format, forTemplate())}\n` : JSON.stringify(out, null, 4) + '\n');
    } finally {
      await src.close();
    }
  });
}
