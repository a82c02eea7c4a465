import type { Command } from 'commander';
import { defaultPolicyPath, readPolicyDocument, setTrust, trustRows, writePolicyDocument, type TrustType } from '../../policy/trust.js';
import { collect } from '../options.js';

/** The user IDs of the keys in key files, as podman's trust show prints them (comma-separated). */
async function describeKeys(paths: string[]): Promise<string> {
  const { readGpgPublicKeyFiles } = await import('../../sign/gpg-keys.js');
  const keys = await readGpgPublicKeyFiles(paths);
  return keys.flatMap((k) => k.getUserIDs()).join(', ');
}

function table(rows: Array<Record<string, string | undefined>>, columns: Array<[string, string]>): string {
  const widths = columns.map(([key, title]) => Math.max(title.length, ...rows.map((r) => (r[key] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]! + 2)))
      .join('')
      .trimEnd();
  return [line(columns.map(([, t]) => t)), ...rows.map((r) => line(columns.map(([k]) => r[k] ?? '')))].join('\n') + '\n';
}

/** `image trust set|show`, as podman's: edit and print containers-policy.json. */
export function registerTrust(image: Command): void {
  const trust = image.command('trust').description('manage container image trust policy (containers-policy.json)');
  trust
    .command('set')
    .description('set the trust policy of a registry or repository ("default" for the global default)')
    .argument('<registry>', 'REGISTRY[/REPOSITORY], or "default"')
    .option('-t, --type <type>', 'accept, reject or signedBy', 'signedBy')
    .option('-f, --pubkeysfile <file>', 'GPG public key file(s) trusted to sign (signedBy); repeatable', collect)
    .option('--policypath <file>', 'policy file (default ~/.config/containers/policy.json if present, else /etc/containers/policy.json)')
    .action(async (scope: string, o: { type: string; pubkeysfile?: string[]; policypath?: string }) => {
      const path = o.policypath ?? (await defaultPolicyPath());
      const doc = setTrust(await readPolicyDocument(path), scope, o.type as TrustType, o.pubkeysfile ?? []);
      await writePolicyDocument(path, doc);
    });
  trust
    .command('show')
    .description('show the trust policy (default, then each registry and repository)')
    .argument('[registry]', 'show only this scope')
    .option('-j, --json', 'as JSON')
    .option('--raw', 'the policy file as it is')
    .option('-n, --noheading', 'no table header')
    .option('--policypath <file>', 'policy file (default as for set)')
    .option('--registrypath <dir>', 'registries.d directory (lookaside shown per scope)')
    .action(async (only: string | undefined, o: { json?: boolean; raw?: boolean; noheading?: boolean; policypath?: string; registrypath?: string }) => {
      const path = o.policypath ?? (await defaultPolicyPath());
      const doc = await readPolicyDocument(path);
      if (o.raw) {
        process.stdout.write(`${JSON.stringify(doc, null, 4)}\n`);
        return;
      }
      const { loadRegistriesD, lookasideForScope } = await import('../../sign/registries-d.js');
      const config = await loadRegistriesD(o.registrypath);
      let rows = await trustRows(doc, { describeKeys, lookaside: (s) => lookasideForScope(config, s) });
      if (only) rows = rows.filter((r) => r.repo_name === only || r.name === only);
      if (o.json) {
        process.stdout.write(`${JSON.stringify(rows, null, 4)}\n`);
        return;
      }
      const text = table(
        rows.map((r) => ({ transport: r.transport, name: r.repo_name ?? r.name, type: r.type, id: r.gpg_id, store: r.sigstore })),
        [
          ['transport', 'TRANSPORT'],
          ['name', 'NAME'],
          ['type', 'TYPE'],
          ['id', 'ID'],
          ['store', 'STORE'],
        ],
      );
      process.stdout.write(o.noheading ? text.split('\n').slice(1).join('\n') : text);
    });
}
