import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { contextFrom, parseBool, parseCompressionFormat } from '../options.js';
import { signalOnInterrupt } from '../signals.js';

/**
 * `stevedore buildah push IMAGE [DESTINATION]`: buildah's push of an image of the local store (a
 * working container's commit) to a registry or transport, with buildah's `--digestfile`, and
 * `--result-file` (the JSON document `build --result-file` writes: the ImageBuild controller reads
 * it as a script build's termination message). The other verbs are in buildah.ts.
 */
interface PushFlags {
  root?: string;
  tlsVerify?: boolean;
  creds?: string;
  authfile?: string;
  digestfile?: string;
  resultFile?: string;
  compressionFormat?: string;
}

export function registerBuildahPush(group: Command): void {
  group
    .command('push')
    .description('push an image of the local store to a registry or transport (as buildah push)')
    .argument('<image>', 'a stored image (what `buildah commit` named)')
    .argument('[destination]', "registry reference or transport name (default: the image's own name)")
    .option('--root <dir>', 'store root')
    .option('--tls-verify <bool>', 'require HTTPS and verified certificates (loopback may use HTTP)', parseBool)
    .option('--creds <user:password>', 'registry credentials')
    .option('--authfile <path>', 'auth file')
    .option('--digestfile <path>', "write the pushed manifest's digest here")
    .option('--compression-format <gzip|zstd|zstd:chunked>', 'compress every layer this way (as buildah push; digests change; zstd makes OCI manifests)')
    .option('--result-file <path>', 'write a JSON result ({"image", "digest", "size"} or {"error"}) here, at most 4096 bytes (a termination message)')
    .action(async (image: string, destination: string | undefined, o: PushFlags) => {
      const { writeResultFile } = await import('../../build/output/result-file.js');
      try {
        const [{ ImageStore }, { pushImage }] = await Promise.all([import('../../runtime/store/index.js'), import('../../runtime/store/image-verbs.js')]);
        const store = await ImageStore.open(o.root !== undefined ? resolve(o.root) : undefined);
        const {
          image: img,
          destination: dest,
          result: r,
        } = await pushImage(store, image, destination, {
          context: contextFrom({ creds: o.creds, tlsVerify: o.tlsVerify, authfile: o.authfile }),
          signal: signalOnInterrupt(),
          ...(o.compressionFormat ? { compression: parseCompressionFormat(o.compressionFormat) } : {}),
          missingHint: 'did the script commit to it?',
        });
        const size = img.manifest.config.size + img.manifest.layers.reduce((n, l) => n + l.size, 0);
        if (o.digestfile) await writeFile(resolve(o.digestfile), r.digest);
        if (o.resultFile) await writeResultFile(o.resultFile, { image: dest.replace(/^docker:\/\//, ''), digest: r.digest, size, platforms: [] });
      } catch (err) {
        const message = (err as Error)?.message ?? String(err);
        if (o.resultFile) await writeResultFile(o.resultFile, { error: { reason: 'PushFailed', message } }).catch(() => undefined);
        throw err;
      }
    });
}
