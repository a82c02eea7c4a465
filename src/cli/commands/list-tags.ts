import type { Command } from 'commander';
import { parseImageName } from '../../transports/index.js';
import { DockerReference } from '../../transports/docker.js';
import { referenceName } from '../../oci/reference.js';
import { UnsupportedError } from '../../util/errors.js';
import { addSourceOptions } from '../options.js';
import { addRetryOptions, readContext } from '../transfer-options.js';

export function registerListTags(program: Command): void {
  const cmd = addSourceOptions(
    program
      .command('list-tags')
      .description('list the tags of a repository (registry) or the image names of an OCI layout')
      .argument('<repository>', 'e.g. docker://localhost:5000/app, oci:/dir')
      .option('--cert-dir <dir>', 'certificates for the registry: CA *.crt, client *.cert/*.key (containers-certs.d)')
      .option('--no-creds', 'access the registry anonymously (no auth file either)')
      .option('--username <user>', 'user name for the registry (with --password)')
      .option('--password <password>', 'password for the registry (with --username)'),
  );
  addRetryOptions(cmd).action(async (name: string, o: Parameters<typeof readContext>[0]) => {
    const ref = parseImageName(name);
    const src = await ref.newSource(readContext(o));
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
