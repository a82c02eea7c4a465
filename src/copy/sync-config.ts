import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { validRange } from 'semver';
import { parseReference } from '../oci/reference.js';
import { InvalidInputError, errorMessage } from '../util/errors.js';
import type { Credentials } from '../registry/credentials.js';
import { compileTagRegex, type TagMatcher } from './tag-filter.js';

/**
 * A sync source file in skopeo-sync's YAML shape:
 *
 *   registry.example.com:
 *     images:                 # repository: [tags or digests]; an empty list means every tag
 *       busybox: []
 *       redis: ["7.2", "sha256:…"]
 *     images-by-tag-regex:    # repository: regex over tags
 *       nginx: ^1\.25\.\d+$
 *     images-by-semver:       # repository: semver range over tags
 *       alpine: ">= 3.18.0"
 *     credentials: { username: u, password: p }
 *     tls-verify: false
 */
export interface SyncRegistryConfig {
  images?: Record<string, string[]>;
  'images-by-tag-regex'?: Record<string, string>;
  'images-by-semver'?: Record<string, string>;
  credentials?: Credentials;
  'tls-verify'?: boolean;
  /** containers-certs.d(5) directory for this registry. */
  'cert-dir'?: string;
}

export type SyncConfig = Record<string, SyncRegistryConfig>;

/** One repository to sync and how its tags are chosen. */
export interface SyncRepoSpec {
  registry: string;
  repository: string;
  /** Explicit tags or digests; empty with no regex/semver means every tag. */
  tags: string[];
  /** Tags must match this (RE2; see tag-filter.ts). */
  regex?: TagMatcher;
  /** Tags matching this are left out, even if `regex` matches them. */
  deny?: TagMatcher;
  semver?: string;
  /** Keep only the N highest versions among the selected tags (tags that are not versions are dropped). */
  newest?: number;
  credentials?: Credentials;
  tlsVerify?: boolean;
  certDir?: string;
}

const KNOWN_KEYS = new Set(['images', 'images-by-tag-regex', 'images-by-semver', 'credentials', 'tls-verify', 'cert-dir']);

/** Validates a parsed config, naming the registry and key of anything wrong. */
export function parseSyncConfig(doc: unknown, source = 'sync config'): SyncRepoSpec[] {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new InvalidInputError(`${source}: expected a map of registries`);
  const specs: SyncRepoSpec[] = [];
  for (const [registry, value] of Object.entries(doc as Record<string, unknown>)) {
    const where = `${source}: ${registry}`;
    if (typeof value !== 'object' || value === null) throw new InvalidInputError(`${where}: expected a map`);
    const cfg = value as Record<string, unknown>;
    for (const k of Object.keys(cfg)) if (!KNOWN_KEYS.has(k)) throw new InvalidInputError(`${where}: unknown key "${k}"`);
    // `credentials:` with no value is YAML null: no credentials, not a null in the spec.
    const credentials = (cfg.credentials ?? undefined) as Credentials | undefined;
    if (credentials && (typeof credentials.username !== 'string' || typeof credentials.password !== 'string')) {
      throw new InvalidInputError(`${where}: credentials need username and password`);
    }
    const tlsVerify = cfg['tls-verify'] as boolean | undefined;
    if (tlsVerify !== undefined && typeof tlsVerify !== 'boolean') throw new InvalidInputError(`${where}: tls-verify must be true or false`);
    // `images: [busybox]` (a list, not a map) would otherwise be read as repository "0".
    for (const k of ['images', 'images-by-tag-regex', 'images-by-semver']) {
      const v = cfg[k];
      if (v !== undefined && v !== null && (typeof v !== 'object' || Array.isArray(v))) {
        throw new InvalidInputError(`${where}: ${k} must be a map of repository names`);
      }
    }
    const certDir = cfg['cert-dir'] as string | undefined;
    if (certDir !== undefined && (typeof certDir !== 'string' || certDir === '')) throw new InvalidInputError(`${where}: cert-dir must be a directory path`);
    const base = { credentials, tlsVerify, ...(certDir !== undefined ? { certDir } : {}) };
    const repoOf = (repo: string) => {
      let ref: ReturnType<typeof parseReference>;
      try {
        ref = parseReference(`${registry}/${repo}`);
      } catch (err) {
        // The reference's own message does not say which file and key it came from.
        throw new InvalidInputError(`${where}: ${errorMessage(err)}`, { cause: err });
      }
      if (ref.tag || ref.digest) throw new InvalidInputError(`${where}: "${repo}" must be a repository without tag; list tags under it`);
      return { registry: ref.registry, repository: ref.repository };
    };
    for (const [repo, tags] of Object.entries((cfg.images ?? {}) as Record<string, unknown>)) {
      const list = tags === null ? [] : tags;
      if (!Array.isArray(list) || list.some((t) => typeof t !== 'string')) throw new InvalidInputError(`${where}: images.${repo} must be a list of tags`);
      specs.push({ ...repoOf(repo), tags: list as string[], ...base });
    }
    for (const [repo, pattern] of Object.entries((cfg['images-by-tag-regex'] ?? {}) as Record<string, unknown>)) {
      if (typeof pattern !== 'string') throw new InvalidInputError(`${where}: images-by-tag-regex.${repo} must be a string`);
      // Unanchored, as skopeo's Go MatchString: `^1\.` and `-alpine$` anchor themselves.
      const regex = compileTagRegex(pattern, `${where}: images-by-tag-regex.${repo}`);
      specs.push({ ...repoOf(repo), tags: [], regex, ...base });
    }
    for (const [repo, range] of Object.entries((cfg['images-by-semver'] ?? {}) as Record<string, unknown>)) {
      if (typeof range !== 'string' || validRange(range) === null) {
        throw new InvalidInputError(`${where}: images-by-semver.${repo}: "${String(range)}" is not a semver range`);
      }
      specs.push({ ...repoOf(repo), tags: [], semver: range, ...base });
    }
  }
  return specs;
}

/** Sync files above 1 MiB are refused before the YAML parser sees them. */
export const MAX_SYNC_CONFIG_BYTES = 1024 * 1024;

export async function loadSyncConfig(path: string): Promise<SyncRepoSpec[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new InvalidInputError(`cannot read sync config ${path}: ${(err as Error).message}`);
  }
  const size = Buffer.byteLength(text);
  if (size > MAX_SYNC_CONFIG_BYTES) throw new InvalidInputError(`${path}: ${size} bytes exceed the ${MAX_SYNC_CONFIG_BYTES}-byte limit for a sync config`);
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new InvalidInputError(`${path}: not valid YAML: ${(err as Error).message}`);
  }
  return parseSyncConfig(doc, path);
}
