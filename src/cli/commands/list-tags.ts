import type { Command } from 'commander';
import { parseImageName } from '../../transports/index.js';
import { DockerReference } from '../../transports/docker.js';
import { referenceName } from '../../oci/reference.js';
import { UnsupportedError } from '../../util/errors.js';
import { addSourceOptions, contextFrom } from '../options.js';

export function registerListTags(program: Command): void {
  addSourceOptions(
    program
      .command('list-tags')
      .description('list the tags of a repository (registry) or the image names of an OCI layout')
      .argument('<repository>', 'e.g. docker://localhost:5000/app, oci:/dir')
      .option('--cert-dir <dir>', 'certificates for the registry: CA *.crt, client *.cert/*.key (containers-certs.d)'),
  ).action(async (name: string, o: { creds?: string; tlsVerify?: boolean; authfile?: string; certDir?: string }) => {
    const ref = parseImageName(name);
    const src = await ref.newSource({ ...contextFrom(o), ...(o.certDir ? { certDir: o.certDir } : {}) });
    try {
      if (!src.listTags) throw new UnsupportedError(`${ref.transport}: transport has no tags`);
      const tags = await src.listTags();
      const repository = ref instanceof DockerReference ? referenceName(ref.ref) : ref.toString();
      process.stdout.write(JSON.stringify({ Repository: repository, Tags: tags }, null, 4) + '\n');
    } finally {
      await src.close();
    }
  });
}
