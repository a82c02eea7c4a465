import { readFile, mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { DEFAULT_REGISTRY } from '../oci/reference.js';
import { InvalidInputError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';

export interface Credentials {
  username: string;
  password: string;
}

/** A docker `config.json`, containers `auth.json` or Kubernetes `.dockerconfigjson` document. */
export interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  [key: string]: unknown;
}

/**
 * The files consulted for credentials, in containers-auth.json(5) order: an explicit file wins;
 * otherwise $REGISTRY_AUTH_FILE, the runtime auth.json, the config auth.json, then Docker's config.
 */
export function authFileCandidates(explicit?: string): string[] {
  if (explicit) return [explicit];
  const env = process.env;
  const out: string[] = [];
  if (env.REGISTRY_AUTH_FILE) out.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) out.push(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  out.push(join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'containers', 'auth.json'));
  out.push(join(env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json'));
  return out;
}

/** Where `stevedore login` writes: the explicit file, $REGISTRY_AUTH_FILE, or the first auth.json candidate. */
export function defaultAuthFile(explicit?: string): string {
  return authFileCandidates(explicit)[0]!;
}

/**
 * Normalises an auths key to `host[/path]`: Docker writes `https://index.docker.io/v1/` for Hub,
 * others write bare hosts or `host/namespace`.
 */
export function normaliseAuthKey(key: string): string {
  let k = key.trim().replace(/^https?:\/\//, '');
  k = k.replace(/\/v[12]\/?$/, '').replace(/\/+$/, '');
  if (k === 'index.docker.io' || k === 'registry-1.docker.io') k = DEFAULT_REGISTRY;
  return k;
}

/** Auth files and pull secrets above 1 MiB are refused before parsing (Kubernetes Secrets stop at 1 MiB too). */
export const MAX_AUTH_FILE_BYTES = 1024 * 1024;

/**
 * Parses a config document. Accepts the modern `{"auths": {...}}` form and the legacy `.dockercfg`
 * form where the hosts are top-level keys (still found in old Kubernetes secrets).
 */
export function parseDockerConfig(text: string, source = 'docker config'): DockerConfig {
  const size = Buffer.byteLength(text);
  if (size > MAX_AUTH_FILE_BYTES) throw new InvalidInputError(`${source}: ${size} bytes exceed the ${MAX_AUTH_FILE_BYTES}-byte limit for an auth file`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    // V8's message quotes the text around the fault, which here may be a password: say where, not what.
    throw new InvalidInputError(`${source}: not valid JSON (${jsonErrorWhere(err)})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new InvalidInputError(`${source}: not a JSON object`);
  const obj = doc as Record<string, unknown>;
  if (obj.auths === undefined) {
    const legacy = Object.entries(obj).filter(([, v]) => typeof v === 'object' && v !== null && 'auth' in (v as object));
    if (legacy.length > 0) return { auths: Object.fromEntries(legacy) as DockerConfig['auths'] };
  }
  if (obj.auths !== undefined && (typeof obj.auths !== 'object' || obj.auths === null || Array.isArray(obj.auths))) {
    throw new InvalidInputError(`${source}: "auths" is not a JSON object`);
  }
  return obj as DockerConfig;
}

/** JSON.parse's complaint without the quoted input: its position when it gives one. */
function jsonErrorWhere(err: unknown): string {
  const m = /at position (\d+)(?: \(line (\d+) column (\d+)\))?/.exec((err as Error).message);
  if (m?.[2]) return `syntax error at line ${m[2]} column ${m[3]}`;
  if (m) return `syntax error at offset ${m[1]}`;
  return /end of JSON input/.test((err as Error).message) ? 'unexpected end of input' : 'syntax error';
}

/** A JSON path for messages: `auths["host"].auth` (the key is a host name, never a secret). */
const entryPath = (key: string, field?: string) => `auths[${JSON.stringify(key)}]${field ? `.${field}` : ''}`;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeEntry(entry: NonNullable<DockerConfig['auths']>[string], source: string, key: string): Credentials | undefined {
  // Messages name the field, never its value: every value here may be a password.
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new InvalidInputError(`${source}: ${entryPath(key)} is not a JSON object`);
  for (const f of ['auth', 'username', 'password'] as const) {
    if (entry[f] !== undefined && typeof entry[f] !== 'string') throw new InvalidInputError(`${source}: ${entryPath(key, f)} is not a string`);
  }
  if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password };
  if (!entry.auth) return undefined;
  const auth = entry.auth.replace(/\s+/g, '');
  if (!BASE64.test(auth) || auth.length % 4 === 1) throw new InvalidInputError(`${source}: ${entryPath(key, 'auth')} is not base64`);
  const decoded = Buffer.from(auth, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw new InvalidInputError(`${source}: ${entryPath(key, 'auth')} is not base64 of user:password`);
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Finds credentials for a repository in one config: the most specific key wins
 * (`host/ns/repo`, then `host/ns`, then `host`), as containers-auth.json(5) specifies.
 */
export function lookupCredentials(config: DockerConfig, registry: string, repository?: string, source = 'docker config'): Credentials | undefined {
  const entries = new Map<string, NonNullable<DockerConfig['auths']>[string]>();
  for (const [k, v] of Object.entries(config.auths ?? {})) entries.set(normaliseAuthKey(k), v);
  const candidates: string[] = [];
  if (repository) {
    const parts = repository.split('/');
    for (let i = parts.length; i > 0; i--) candidates.push(`${registry}/${parts.slice(0, i).join('/')}`);
  }
  candidates.push(registry);
  for (const key of candidates) {
    const entry = entries.get(key);
    if (entry) {
      const creds = decodeEntry(entry, source, key);
      if (creds) return creds;
    }
  }
  return undefined;
}

/**
 * The credentials a context supplies for one registry: its explicit ones, else (unless the context
 * forbids ambient credentials) those found lazily in the usual auth files, else none (anonymous).
 */
export function contextCredentials(
  ctx: { credentials?: Credentials; authFile?: string; ambientCredentials?: boolean },
  registry: string,
  repository?: string,
): Credentials | (() => Promise<Credentials | undefined>) | undefined {
  if (ctx.credentials) return ctx.credentials;
  if (ctx.ambientCredentials === false) return undefined;
  return () => findCredentials(registry, repository, ctx.authFile);
}

/** Looks credentials up across the usual files (first file with a match wins). */
export async function findCredentials(registry: string, repository?: string, authFile?: string): Promise<Credentials | undefined> {
  for (const file of authFileCandidates(authFile)) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      continue;
    }
    const creds = lookupCredentials(parseDockerConfig(text, file), registry, repository, file);
    if (creds) return creds;
  }
  return undefined;
}

export async function readAuthFile(file: string): Promise<DockerConfig> {
  try {
    return parseDockerConfig(await readFile(file, 'utf8'), file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { auths: {} };
    throw err;
  }
}

/** Stores (or with `undefined`, removes) a registry's credentials; the file is written atomically, mode 0600. */
export async function storeCredentials(file: string, key: string, creds: Credentials | undefined): Promise<boolean> {
  const config = await readAuthFile(file);
  const auths = { ...(config.auths ?? {}) };
  const want = normaliseAuthKey(key);
  let changed = false;
  for (const k of Object.keys(auths)) {
    if (normaliseAuthKey(k) === want) {
      delete auths[k];
      changed = true;
    }
  }
  if (creds) {
    auths[want] = { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') };
    changed = true;
  }
  await mkdir(dirname(file), { recursive: true });
  await writeFileAtomic(file, JSON.stringify({ ...config, auths }, null, '\t') + '\n', 0o600);
  return changed;
}
