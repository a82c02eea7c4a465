import type { Command } from 'commander';
import { isDigest } from '../../oci/digest.js';
import { referenceTarget } from '../../oci/reference.js';
import { deleteManifest, headManifest } from '../../registry/manifests.js';
import { DockerReference, registryClientFor } from '../../transports/docker.js';
import { parseImageName } from '../../transports/index.js';
import { NotFoundError, UnsupportedError } from '../../util/errors.js';
import { addSourceOptions, contextFrom } from '../options.js';

export function registerDelete(program: Command): void {
  addSourceOptions(
    program
      .command('delete')
      .description('delete an image from a registry (by tag: the digest it names, and so every tag on it)')
      .argument('<image>', 'docker://registry/repo:tag or @digest'),
  ).action(async (name: string, o: { creds?: string; tlsVerify?: boolean; authfile?: string }) => {
    const ref = parseImageName(name);
    if (!(ref instanceof DockerReference)) throw new UnsupportedError(`delete works on registry images (docker://), not ${ref.transport}:`);
    const client = registryClientFor(ref.ref, contextFrom(o));
    try {
      const target = referenceTarget(ref.ref);
      const digest = isDigest(target) ? target : (await headManifest(client, ref.ref.repository, target))?.digest;
      if (!digest) throw new NotFoundError(`${ref.toString()} does not exist`);
      await deleteManifest(client, ref.ref.repository, digest);
      process.stderr.write(`Deleted ${ref.ref.registry}/${ref.ref.repository}@${digest}\n`);
    } finally {
      await client.close();
    }
  });
}
