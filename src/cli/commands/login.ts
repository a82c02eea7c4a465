import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { parseReference } from '../../oci/reference.js';
import { RegistryClient } from '../../registry/client.js';
import { defaultAuthFile, normaliseAuthKey, storeCredentials, readAuthFile } from '../../registry/credentials.js';
import { InvalidInputError } from '../../util/errors.js';
import { writeFileAtomic } from '../../util/fs.js';
import { parseBool } from '../options.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

async function prompt(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  try {
    return await rl.question(question);
  } finally {
    rl.close();
  }
}

/** `registry[/namespace]` as a user types it, with or without a scheme. */
function registryKey(arg: string): { key: string; registry: string } {
  const key = normaliseAuthKey(arg);
  const registry = parseReference(`${key.split('/')[0]}/x`).registry;
  return { key, registry };
}

export function registerLogin(program: Command): void {
  program
    .command('login')
    .description('check credentials against a registry and store them in the auth file')
    .argument('<registry>', 'registry host[:port], optionally with a namespace')
    .option('-u, --username <name>')
    .option('-p, --password <password>', 'prefer --password-stdin: arguments are visible to other users')
    .option('--password-stdin', 'read the password from standard input')
    .option('--authfile <path>', 'auth file to write')
    .option('--tls-verify <bool>', 'require HTTPS and verified certificates', parseBool)
    .action(async (arg: string, o: { username?: string; password?: string; passwordStdin?: boolean; authfile?: string; tlsVerify?: boolean }) => {
      const { key, registry } = registryKey(arg);
      const username = o.username ?? (await prompt('Username: '));
      const password = o.passwordStdin ? await readStdin() : (o.password ?? (await prompt('Password: ')));
      if (!username || !password) throw new InvalidInputError('a username and a password are required');
      const client = new RegistryClient({ registry, tlsVerify: o.tlsVerify, credentials: { username, password } });
      try {
        // An authenticated /v2/ succeeds only with valid credentials: Basic is checked by the
        // registry, Bearer by its token service.
        const res = await client.request({ method: 'GET', path: '/v2/', scopes: [], expect: [200] });
        await res.body.dump();
      } finally {
        await client.close();
      }
      const file = defaultAuthFile(o.authfile);
      await storeCredentials(file, key, { username, password });
      process.stderr.write(`Login Succeeded (${key}; credentials in ${file})\n`);
    });

  program
    .command('logout')
    .description('remove stored credentials for a registry')
    .argument('[registry]')
    .option('-a, --all', 'remove every stored credential')
    .option('--authfile <path>', 'auth file to edit')
    .action(async (arg: string | undefined, o: { all?: boolean; authfile?: string }) => {
      const file = defaultAuthFile(o.authfile);
      if (o.all) {
        const config = await readAuthFile(file);
        await writeFileAtomic(file, JSON.stringify({ ...config, auths: {} }, null, '\t') + '\n', 0o600);
        process.stderr.write(`Removed login credentials for all registries\n`);
        return;
      }
      if (!arg) throw new InvalidInputError('name a registry or use --all');
      const { key } = registryKey(arg);
      // Check first: storeCredentials writes the file even when there is nothing to remove, so a
      // failed logout used to create an empty auth file where there was none.
      const stored = Object.keys((await readAuthFile(file)).auths ?? {}).some((k) => normaliseAuthKey(k) === key);
      if (!stored) throw new InvalidInputError(`not logged into ${key}`);
      await storeCredentials(file, key, undefined);
      process.stderr.write(`Removed login credentials for ${key}\n`);
    });
}
