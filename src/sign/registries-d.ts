import { readdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import type { ImageReference } from '../oci/reference.js';
import { scopeIdentity, scopeNamespaces } from '../policy/scope.js';
import { exists } from '../util/fs.js';
import { InvalidInputError } from '../util/errors.js';

/**
 * containers-registries.d(5): where simple signatures of registry images are read (`lookaside`)
 * and written (`lookaside-staging`), and whether sigstore signatures are stored as registry
 * attachments, per registry namespace (`docker:`) with a `default-docker` fallback.
 */
export interface RegistryNamespace {
  lookaside?: string;
  lookasideStaging?: string;
  useSigstoreAttachments?: boolean;
}

export interface RegistriesD {
  /** The directory read, for messages. */
  dir: string;
  defaultDocker?: RegistryNamespace;
  /** Scope (`host`, `host/ns`, `host/ns/repo[:tag|@digest]`, `*.domain`) → settings. */
  docker: Record<string, RegistryNamespace>;
}

/** A registries.d file that cannot be used: the file and field are named. */
export class InvalidRegistriesDError extends InvalidInputError {
  constructor(message: string) {
    super(`registries.d: ${message}`);
  }
}

const NS_FIELDS = ['lookaside', 'lookaside-staging', 'sigstore', 'sigstore-staging', 'use-sigstore-attachments'];

function parseNamespace(v: unknown, at: string): RegistryNamespace {
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new InvalidRegistriesDError(`${at} must be a mapping`);
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (!NS_FIELDS.includes(k)) throw new InvalidRegistriesDError(`${at}: unknown field "${k}" (allowed: ${NS_FIELDS.join(', ')})`);
  const url = (k: string): string | undefined => {
    const s = o[k];
    if (s === undefined || s === null || s === '') return undefined;
    if (typeof s !== 'string') throw new InvalidRegistriesDError(`${at}.${k} must be a URL string`);
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      throw new InvalidRegistriesDError(`${at}.${k}: "${s}" is not a URL`);
    }
    if (!['file:', 'http:', 'https:'].includes(u.protocol)) throw new InvalidRegistriesDError(`${at}.${k}: unsupported scheme in "${s}" (file, http, https)`);
    return s;
  };
  // `sigstore` and `sigstore-staging` are the older names of the lookaside fields; both at once is ambiguous.
  if (o.lookaside !== undefined && o.sigstore !== undefined) throw new InvalidRegistriesDError(`${at}: both lookaside and its old name sigstore are set`);
  if (o['lookaside-staging'] !== undefined && o['sigstore-staging'] !== undefined)
    throw new InvalidRegistriesDError(`${at}: both lookaside-staging and its old name sigstore-staging are set`);
  const ns: RegistryNamespace = {};
  const lookaside = url('lookaside') ?? url('sigstore');
  const staging = url('lookaside-staging') ?? url('sigstore-staging');
  if (lookaside) ns.lookaside = lookaside;
  if (staging) ns.lookasideStaging = staging;
  const usa = o['use-sigstore-attachments'];
  if (usa !== undefined && usa !== null) {
    if (typeof usa !== 'boolean') throw new InvalidRegistriesDError(`${at}.use-sigstore-attachments must be true or false`);
    ns.useSigstoreAttachments = usa;
  }
  return ns;
}

/** Parses one registries.d YAML file into `into`; a namespace defined by two files is an error. */
export function parseRegistriesDFile(text: string, file: string, into: RegistriesD): void {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) throw new InvalidRegistriesDError(`${file}: ${doc.errors[0]!.message}`);
  const v = doc.toJS() as unknown;
  if (v === null || v === undefined) return;
  if (typeof v !== 'object' || Array.isArray(v)) throw new InvalidRegistriesDError(`${file}: the top level must be a mapping`);
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (k !== 'default-docker' && k !== 'docker') throw new InvalidRegistriesDError(`${file}: unknown field "${k}" (allowed: default-docker, docker)`);
  if ('default-docker' in o) {
    if (into.defaultDocker) throw new InvalidRegistriesDError(`${file}: default-docker is defined in more than one file`);
    into.defaultDocker = parseNamespace(o['default-docker'], `${file}: default-docker`);
  }
  if (o.docker !== undefined && o.docker !== null) {
    if (typeof o.docker !== 'object' || Array.isArray(o.docker)) throw new InvalidRegistriesDError(`${file}: docker must be a mapping of namespaces`);
    for (const [scope, ns] of Object.entries(o.docker as Record<string, unknown>)) {
      if (scope in into.docker) throw new InvalidRegistriesDError(`${file}: docker namespace "${scope}" is defined in more than one file`);
      into.docker[scope] = parseNamespace(ns, `${file}: docker["${scope}"]`);
    }
  }
}

/**
 * The registries.d directory containers/image uses: the explicit one, else
 * ~/.config/containers/registries.d when it exists, else /etc/containers/registries.d.
 */
export async function registriesDPath(explicit?: string): Promise<string> {
  if (explicit) return explicit;
  const user = join(homedir(), '.config', 'containers', 'registries.d');
  return (await exists(user)) ? user : '/etc/containers/registries.d';
}

/** Reads every `*.yaml` file of the directory (a missing directory is an empty configuration). */
export async function loadRegistriesD(explicitDir?: string): Promise<RegistriesD> {
  const dir = await registriesDPath(explicitDir);
  const config: RegistriesD = { dir, docker: {} };
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.yaml')).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return config;
    throw new InvalidRegistriesDError(`cannot read ${dir}: ${(err as Error).message}`);
  }
  for (const n of names) {
    const file = join(dir, n);
    parseRegistriesDFile(await readFile(file, 'utf8'), file, config);
  }
  return config;
}

/** The settings that apply to an image, most specific scope first, as containers/image looks them up. */
function candidates(config: RegistriesD, ref: ImageReference): RegistryNamespace[] {
  const subject = { transport: 'docker' as const, reference: ref };
  const out: RegistryNamespace[] = [];
  for (const scope of [scopeIdentity(subject), ...scopeNamespaces(subject)]) {
    const ns = config.docker[scope];
    if (ns) out.push(ns);
  }
  if (config.defaultDocker) out.push(config.defaultDocker);
  return out;
}

/** containers/image's built-in lookaside when nothing is configured: per user when not root. */
export function builtinLookaside(): string {
  return process.geteuid?.() === 0 ? 'file:///var/lib/containers/sigstore' : `file://${join(homedir(), '.local', 'share', 'containers', 'sigstore')}`;
}

/**
 * The lookaside base URL for an image: for writing, the first scope with lookaside-staging or
 * lookaside; for reading, the first with lookaside; else the built-in default.
 */
export function lookasideBase(config: RegistriesD, ref: ImageReference, write: boolean): string {
  for (const ns of candidates(config, ref)) {
    if (write && ns.lookasideStaging) return ns.lookasideStaging;
    if (ns.lookaside) return ns.lookaside;
  }
  return builtinLookaside();
}

/** Whether sigstore signatures of the image are registry attachments (first scope that says). */
export function useSigstoreAttachments(config: RegistriesD, ref: ImageReference): boolean {
  for (const ns of candidates(config, ref)) if (ns.useSigstoreAttachments !== undefined) return ns.useSigstoreAttachments;
  return false;
}

/**
 * The lookaside (reading) configured for a policy scope (`host`, `host/ns`, `host/ns/repo`), for
 * display: the scope's own entry, else the nearest enclosing one, else default-docker's.
 */
export function lookasideForScope(config: RegistriesD, scope: string): string | undefined {
  let name = scope;
  for (;;) {
    const ns = config.docker[name];
    if (ns?.lookaside) return ns.lookaside;
    const slash = name.lastIndexOf('/');
    if (slash < 0) break;
    name = name.slice(0, slash);
  }
  return config.defaultDocker?.lookaside;
}
