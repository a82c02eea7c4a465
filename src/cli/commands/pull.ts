import type { Command } from 'commander';
import { ImageStore } from '../../runtime/store/index.js';
import { pullImage } from '../../runtime/store/image-verbs.js';
import { parseBool } from '../options.js';
import { signalOnInterrupt } from '../signals.js';

/** `stevedore pull IMAGE`: as `podman pull`, fetches into the local store and prints the image ID. */
export function registerPull(program: Command): void {
  program
    .command('pull')
    .description('pull an image into the local store and print its image ID (as podman pull)')
    .argument('<image>', 'a registry reference or a transport name (oci:, docker-archive:, ...)')
    .option('--tls-verify <bool>', 'require HTTPS and verified certificates', parseBool)
    .option('-q, --quiet', 'accepted for podman compatibility (progress is never printed)')
    .option('--root <dir>', 'store root')
    .action(async (name: string, o: { tlsVerify?: boolean; root?: string }) => {
      const store = await ImageStore.open(o.root);
      const img = await pullImage(store, name, { context: o.tlsVerify === undefined ? undefined : { tlsVerify: o.tlsVerify }, signal: signalOnInterrupt() });
      process.stdout.write(`${img.configDigest.replace(/^sha256:/, '')}\n`);
    });
}
