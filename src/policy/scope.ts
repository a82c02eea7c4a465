import { formatReference, referenceName, type ImageReference } from '../oci/reference.js';
import type { Policy, PolicyRequirement } from './types.js';

/** What the policy is asked about: a transport and the name of the image in it. */
export type PolicySubject =
  | { transport: 'docker'; reference: ImageReference }
  /** Path transports (`oci`, `dir`, `oci-archive`, `docker-archive`): the resolved absolute path, and the ref inside it if any. */
  | { transport: string; path: string; ref?: string };

/**
 * The image's most specific scope: for a registry image the fully expanded reference with its
 * digest (if pinned) or tag (`latest` if none), e.g. `docker.io/library/busybox:latest`.
 */
export function scopeIdentity(subject: PolicySubject): string {
  if (subject.transport === 'docker' && 'reference' in subject) {
    const r = subject.reference;
    return r.digest
      ? formatReference({ registry: r.registry, repository: r.repository, digest: r.digest })
      : formatReference({ registry: r.registry, repository: r.repository, tag: r.tag ?? 'latest' });
  }
  const s = subject as { path: string; ref?: string };
  return s.ref ? `${s.path}:${s.ref}` : s.path;
}

/**
 * The broader scopes the image falls in, most specific first. For a registry image: the repository,
 * each parent namespace up to the host (with its port), then `*.`-wildcards of the host name
 * without its port, dropping one label at a time (`*.b.example.com`, `*.example.com`, `*.com`).
 * For a path: the path, then each parent directory (never `/`, which is the transport default).
 */
export function scopeNamespaces(subject: PolicySubject): string[] {
  const out: string[] = [];
  if (subject.transport === 'docker' && 'reference' in subject) {
    let name = referenceName(subject.reference);
    for (;;) {
      out.push(name);
      const slash = name.lastIndexOf('/');
      if (slash < 0) break;
      name = name.slice(0, slash);
    }
    let host = name.startsWith('[') ? name : name.replace(/:\d+$/, '');
    for (;;) {
      const dot = host.indexOf('.');
      if (dot < 0 || host.startsWith('[')) break;
      host = host.slice(dot + 1);
      out.push(`*.${host}`);
    }
    return out;
  }
  let path = (subject as { path: string }).path;
  while (path !== '/' && path.lastIndexOf('/') >= 0) {
    out.push(path);
    path = path.slice(0, path.lastIndexOf('/')) || '/';
  }
  return out;
}

/**
 * The requirements that apply, as containers/image picks them: within the image's transport, the
 * exact identity, then each namespace most specific first, then the transport's `""` default, and
 * only when none of those exists, the global `default`.
 */
export function requirementsFor(policy: Policy, subject: PolicySubject): { scope: string; requirements: PolicyRequirement[] } {
  const scopes = policy.transports[subject.transport];
  if (scopes) {
    for (const candidate of [scopeIdentity(subject), ...scopeNamespaces(subject)]) {
      const reqs = scopes[candidate];
      if (reqs) return { scope: `${subject.transport}:${candidate}`, requirements: reqs };
    }
    if (scopes['']) return { scope: `${subject.transport}:""`, requirements: scopes[''] };
  }
  return { scope: 'default', requirements: policy.default };
}
