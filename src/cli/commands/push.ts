import type { Command } from 'commander';
import { ImageStore } from '../../runtime/store/index.js';
import { pushImage } from '../../runtime/store/image-verbs.js';
import { parseBool, parseCompressionFormat } from '../options.js';
import { signalOnInterrupt } from '../signals.js';

/** `stevedore push IMAGE [DESTINATION]`: as `podman push`, copies a stored image out; prints nothing. */
export function registerPush(program: Command): void {
  program
    .command('push')
    .description('push an image of the local store to a registry or transport (as podman push)')
    .argument('<image>', 'a stored image')
    .argument('[destination]', "registry reference or transport name (default: the image's own name)")
    .option('--tls-verify <bool>', 'require HTTPS and verified certificates', parseBool)
    .option('-q, --quiet', 'accepted for podman compatibility (progress is never printed)')
    .option('--root <dir>', 'store root')
    .option(
      '--compression-format <gzip|zstd|zstd:chunked>',
      'compress every layer this way (as podman push; digests change; zstd makes OCI manifests; zstd:chunked adds a table of contents for partial pulls)',
    )
    .action(async (image: string, destination: string | undefined, o: { tlsVerify?: boolean; root?: string; compressionFormat?: string }) => {
      const c = o.compressionFormat === undefined ? undefined : parseCompressionFormat(o.compressionFormat);
      const store = await ImageStore.open(o.root);
      await pushImage(store, image, destination, {
        context: o.tlsVerify === undefined ? undefined : { tlsVerify: o.tlsVerify },
        signal: signalOnInterrupt(),
        ...(c ? { compression: c } : {}),
      });
    });
}
