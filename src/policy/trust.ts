import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { exists, writeFileAtomic } from '../util/fs.js';
import { InvalidInputError } from '../util/errors.js';
import { parseReference } from '../oci/reference.js';
import { parsePolicy } from './parse.js';

/** `podman image trust set --type`: the requirement kinds it writes. */
export type TrustType = 'accept' | 'reject' | 'signedBy';

const SYSTEM_POLICY = '/etc/containers/policy.json';

/** containers/image's policy file: ~/.config/containers/policy.json when it exists, else /etc/containers/policy.json. */
export async function defaultPolicyPath(): Promise<string> {
  const user = join(homedir(), '.config', 'containers', 'policy.json');
  return (await exists(user)) ? user : SYSTEM_POLICY;
}

type Doc = { default?: unknown[]; transports?: Record<string, Record<string, unknown[]>> } & Record<string, unknown>;

/** Reads a policy file as JSON (kept as written: unknown transports and fields survive an edit). */
export async function readPolicyDocument(path: string): Promise<Doc> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { default: [{ type: 'insecureAcceptAnything' }], transports: {} };
    throw new InvalidInputError(`cannot read policy file ${path}: ${(err as Error).message}`);
  }
  parsePolicy(text, path); // refuse to edit (or show) a file containers/image would refuse
  return JSON.parse(text) as Doc;
}

/**
 * `trust set`: replaces the requirements of one scope (`default` for the global default, else a
 * registry or repository of the docker transport) with one requirement of `type`. signedBy names
 * every key file in one `keyPaths` list (any of them may sign; podman writes one requirement per
 * key, which would need every key to sign) or `keyPath` for one file.
 */
export function setTrust(doc: Doc, scope: string, type: TrustType, pubkeysFiles: readonly string[] = []): Doc {
  if (scope === '') throw new InvalidInputError('trust set: a registry, repository or "default" is required');
  if (scope !== 'default' && !/^\*\.[^*/:]+$/.test(scope)) {
    // A registry (host[:port]) or a repository, as podman accepts them: no scheme, no transport.
    try {
      if (scope.includes('://')) throw new Error('a scheme is not part of a scope');
      parseReference(scope.includes('/') ? scope : `${scope}/x`);
    } catch (err) {
      throw new InvalidInputError(`trust set: "${scope}" is not a registry, repository or "default": ${(err as Error).message}`);
    }
  }
  if (type !== 'signedBy' && pubkeysFiles.length > 0)
    throw new InvalidInputError(`trust set: ${pubkeysFiles.length} public key file(s) cannot be used with type ${type}`);
  let req: Record<string, unknown>;
  switch (type) {
    case 'accept':
      req = { type: 'insecureAcceptAnything' };
      break;
    case 'reject':
      req = { type: 'reject' };
      break;
    case 'signedBy':
      if (pubkeysFiles.length === 0) throw new InvalidInputError('trust set: type signedBy needs at least one --pubkeysfile');
      // Absolute paths, as podman writes them: the policy is read from other working directories.
      req =
        pubkeysFiles.length === 1
          ? { type: 'signedBy', keyType: 'GPGKeys', keyPath: resolve(pubkeysFiles[0]!) }
          : { type: 'signedBy', keyType: 'GPGKeys', keyPaths: pubkeysFiles.map((f) => resolve(f)) };
      break;
    default:
      throw new InvalidInputError(`trust set: --type must be accept, reject or signedBy, got "${String(type)}"`);
  }
  const out: Doc = JSON.parse(JSON.stringify(doc)) as Doc;
  if (scope === 'default') {
    out.default = [req];
  } else {
    out.transports ??= {};
    out.transports.docker ??= {};
    out.transports.docker[scope] = [req];
  }
  // The result must be a policy containers/image accepts (e.g. a bad scope is refused here, not later).
  parsePolicy(JSON.stringify(out), 'the edited policy');
  return out;
}

/** Writes the policy as podman does (4-space indentation), atomically. */
export async function writePolicyDocument(path: string, doc: Doc): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(doc, null, 4)}\n`);
}

/** One row of `trust show`, with podman's JSON field names. */
export interface TrustRow {
  transport: string;
  name?: string;
  repo_name?: string;
  keys?: string[];
  sigstore?: string;
  type: string;
  gpg_id?: string;
}

const TYPE_NAMES: Record<string, string> = {
  insecureAcceptAnything: 'accept',
  reject: 'reject',
  signedBy: 'signed',
  sigstoreSigned: 'sigstoreSigned',
  signedBaseLayer: 'signedBaseLayer',
};

/**
 * `trust show`'s rows: the default (transport `all`), then each docker scope (transport
 * `repository`), then other transports' scopes; signed requirements list their key files, the
 * keys' user IDs (`describeKeys`) and the scope's lookaside (`lookaside`).
 */
export async function trustRows(
  doc: Doc,
  opts: { describeKeys?: (paths: string[]) => Promise<string>; lookaside?: (scope: string) => string | undefined } = {},
): Promise<TrustRow[]> {
  const rows: TrustRow[] = [];
  const add = async (transport: string, name: string, reqs: unknown[]) => {
    for (const r of reqs as Array<Record<string, unknown>>) {
      // podman's naming: the default is "* (default)" (repo_name "default"); a docker scope is its own repo_name.
      const row: TrustRow = transport === 'all' ? { transport, name: '* (default)', repo_name: 'default', type: '' } : { transport, name, type: '' };
      row.type = TYPE_NAMES[String(r.type)] ?? String(r.type);
      if (transport === 'repository') row.repo_name = name;
      const keys = [r.keyPath, ...((r.keyPaths as unknown[]) ?? [])].filter((k): k is string => typeof k === 'string');
      if (keys.length > 0) row.keys = keys;
      if (r.type === 'signedBy') {
        if (keys.length > 0 && opts.describeKeys) row.gpg_id = await opts.describeKeys(keys).catch(() => 'ERR: cannot read the key');
        if (r.keyData !== undefined && !row.gpg_id) row.gpg_id = '(keyData)';
        const store = transport === 'repository' ? opts.lookaside?.(name) : undefined;
        if (store) row.sigstore = store;
      }
      rows.push(row);
    }
  };
  await add('all', 'default', doc.default ?? []);
  for (const [transport, scopes] of Object.entries(doc.transports ?? {})) {
    // Sorted by scope, as podman prints them (its map keys are sorted).
    for (const [scope, reqs] of Object.entries(scopes).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      await add(transport === 'docker' ? 'repository' : transport, scope === '' ? `${transport} default` : scope, reqs);
  }
  return rows;
}
