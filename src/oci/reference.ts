import { InvalidInputError } from '../util/errors.js';
import { parseDigest, type Digest } from './digest.js';

export const DEFAULT_REGISTRY = 'docker.io';
/** Docker Hub's API answers on this host, not on docker.io. */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';

// The grammar of distribution/reference (reference.go), written out once here.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const MAX_NAME = 255;

/** A parsed image reference: `registry/repository[:tag][@digest]`, normalised as Docker does. */
export interface ImageReference {
  /** Registry host with optional port, e.g. `docker.io`, `localhost:5000`. */
  registry: string;
  /** Repository path within the registry, e.g. `library/busybox`. */
  repository: string;
  tag?: string;
  digest?: Digest;
}

function isDomain(first: string): boolean {
  return first === 'localhost' || first.includes('.') || first.includes(':') || first !== first.toLowerCase();
}

/**
 * Whether a name starts with a registry host, as distribution/reference decides: its first
 * component (before a `/`) has a dot, a port or an uppercase letter, or is `localhost`. The one rule
 * for this in the code base: `busybox` and `user/app` are Docker Hub names, `reg.io/x`,
 * `localhost:5000/x` and `localhost/x` name their host.
 */
export function hasRegistryHost(name: string): boolean {
  const slash = name.indexOf('/');
  return slash > 0 && isDomain(name.slice(0, slash));
}

function checkDomain(domain: string, input: string): void {
  // host[:port], host may be an IPv6 literal in brackets.
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:]+)(?::(\d+))?$/.exec(domain);
  if (!m) throw new InvalidInputError(`invalid reference "${input}": malformed registry "${domain}"`);
  const host = m[1]!;
  if (!host.startsWith('[')) {
    for (const part of host.split('.')) {
      if (!DOMAIN_COMPONENT.test(part)) throw new InvalidInputError(`invalid reference "${input}": malformed registry host "${host}"`);
    }
  }
  if (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535)) {
    throw new InvalidInputError(`invalid reference "${input}": port out of range`);
  }
}

/**
 * Parses a reference the way `docker pull` reads it: `busybox` is `docker.io/library/busybox:latest`,
 * `user/app` is `docker.io/user/app`, a first component with a dot, a colon or `localhost` is a registry.
 * A tag is optional (callers decide whether `latest` is implied).
 */
export function parseReference(input: string): ImageReference {
  const s = input.trim();
  if (s === '') throw new InvalidInputError('invalid reference: empty');
  let rest = s;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    try {
      digest = parseDigest(d).digest;
    } catch (err) {
      throw new InvalidInputError(`invalid reference "${input}": ${(err as Error).message}`);
    }
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > lastSlash) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag)) throw new InvalidInputError(`invalid reference "${input}": malformed tag "${tag}"`);
  }
  if (rest === '') throw new InvalidInputError(`invalid reference "${input}": missing repository name`);
  const parts = rest.split('/');
  let registry = DEFAULT_REGISTRY;
  if (hasRegistryHost(rest)) {
    registry = parts.shift()!;
    checkDomain(registry, input);
  }
  if (registry === 'index.docker.io' || registry === DOCKER_HUB_API_HOST) registry = DEFAULT_REGISTRY;
  for (const p of parts) {
    if (!PATH_COMPONENT.test(p)) {
      const hint = p !== p.toLowerCase() ? ' (repository names must be lowercase)' : '';
      throw new InvalidInputError(`invalid reference "${input}": malformed repository component "${p}"${hint}`);
    }
  }
  if (registry === DEFAULT_REGISTRY && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  if (registry.length + 1 + repository.length > MAX_NAME) {
    throw new InvalidInputError(`invalid reference "${input}": name longer than ${MAX_NAME} characters`);
  }
  const ref: ImageReference = { registry, repository };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** `registry/repository` */
export function referenceName(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The canonical string: `registry/repository[:tag][@digest]`. */
export function formatReference(ref: ImageReference): string {
  let s = referenceName(ref);
  if (ref.tag) s += `:${ref.tag}`;
  if (ref.digest) s += `@${ref.digest}`;
  return s;
}

/** Docker's short form: `busybox:latest` rather than `docker.io/library/busybox:latest`. */
export function familiarName(ref: ImageReference): string {
  let name = referenceName(ref);
  if (ref.registry === DEFAULT_REGISTRY) {
    // Only as short as still reads back the same: `library/a/b` stays (`a/b` is docker.io/a/b), and a
    // first component that looks like a host (`foo.bar/baz`) keeps docker.io/ in front (found by test/fuzz).
    const short = ref.repository.startsWith('library/') && !ref.repository.slice(8).includes('/') ? ref.repository.slice(8) : ref.repository;
    if (!hasRegistryHost(short)) name = short;
  }
  if (ref.tag) name += `:${ref.tag}`;
  if (ref.digest) name += `@${ref.digest}`;
  return name;
}

/** What to ask a registry for: the digest if pinned, else the tag, else `latest`. */
export function referenceTarget(ref: ImageReference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

export function withTag(ref: ImageReference, tag: string): ImageReference {
  if (!TAG.test(tag)) throw new InvalidInputError(`invalid tag "${tag}"`);
  return { registry: ref.registry, repository: ref.repository, tag };
}

export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}
