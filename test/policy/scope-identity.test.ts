import { describe, expect, it } from 'vitest';
import { identityMatches } from '../../src/policy/identity.js';
import { parsePolicy } from '../../src/policy/parse.js';
import { requirementsFor, scopeIdentity, scopeNamespaces, type PolicySubject } from '../../src/policy/scope.js';
import { decide } from '../../src/policy/evaluate.js';
import type { Digest } from '../../src/oci/digest.js';
import { parseReference } from '../../src/oci/reference.js';
import type { SignedIdentity } from '../../src/policy/types.js';

const docker = (s: string): PolicySubject => ({ transport: 'docker', reference: parseReference(s) });
const DIGEST = `sha256:${'a'.repeat(64)}` as Digest;

describe('policy scopes', () => {
  it('expands a registry image to its identity and namespaces, most specific first, with *.domain wildcards without the port', () => {
    const s = docker('registry.example.com:5000/team/app:1.0');
    expect(scopeIdentity(s)).toBe('registry.example.com:5000/team/app:1.0');
    expect(scopeNamespaces(s)).toEqual([
      'registry.example.com:5000/team/app',
      'registry.example.com:5000/team',
      'registry.example.com:5000',
      '*.example.com',
      '*.com',
    ]);
    expect(scopeIdentity(docker('busybox'))).toBe('docker.io/library/busybox:latest');
    expect(scopeNamespaces(docker('busybox'))).toEqual(['docker.io/library/busybox', 'docker.io/library', 'docker.io', '*.io']);
    expect(scopeIdentity(docker(`quay.io/x/y@${DIGEST}`))).toBe(`quay.io/x/y@${DIGEST}`);
  });

  it('expands a path transport to the path and its parent directories, never "/"', () => {
    const s: PolicySubject = { transport: 'oci', path: '/srv/images/app', ref: 'v1' };
    expect(scopeIdentity(s)).toBe('/srv/images/app:v1');
    expect(scopeNamespaces(s)).toEqual(['/srv/images/app', '/srv/images', '/srv']);
  });

  const policy = parsePolicy(
    JSON.stringify({
      default: [{ type: 'reject' }],
      transports: {
        docker: {
          '': [{ type: 'insecureAcceptAnything' }],
          'registry.example.com:5000/team/app:1.0': [{ type: 'sigstoreSigned', keyPath: '/exact.pub' }],
          'registry.example.com:5000/team/app': [{ type: 'sigstoreSigned', keyPath: '/repo.pub' }],
          'registry.example.com:5000/team': [{ type: 'sigstoreSigned', keyPath: '/ns.pub' }],
          'registry.example.com:5000': [{ type: 'sigstoreSigned', keyPath: '/host.pub' }],
          '*.example.com': [{ type: 'sigstoreSigned', keyPath: '/wild.pub' }],
          '*.internal.example.com': [{ type: 'sigstoreSigned', keyPath: '/wild-internal.pub' }],
          'blocked.example.org': [{ type: 'reject' }],
        },
        oci: { '/srv/trusted': [{ type: 'insecureAcceptAnything' }] },
      },
    }),
  );
  const key = (s: string) => {
    const r = requirementsFor(policy, docker(s));
    return { scope: r.scope, key: (r.requirements[0] as { keyPath?: string }).keyPath ?? r.requirements[0]!.type };
  };

  it('picks the most specific scope: exact reference, repository, namespace, host, nearest wildcard, transport default', () => {
    expect(key('registry.example.com:5000/team/app:1.0').key).toBe('/exact.pub');
    expect(key('registry.example.com:5000/team/app:2.0').key).toBe('/repo.pub');
    expect(key(`registry.example.com:5000/team/app@${DIGEST}`).key).toBe('/repo.pub');
    expect(key('registry.example.com:5000/team/other:1').key).toBe('/ns.pub');
    expect(key('registry.example.com:5000/solo:1').key).toBe('/host.pub');
    // Another port of the same host is another scope; the wildcard (portless) still covers it.
    expect(key('registry.example.com:6000/team/app:1.0').key).toBe('/wild.pub');
    expect(key('a.b.internal.example.com/x:1').key).toBe('/wild-internal.pub');
    expect(key('x.example.com/y:1')).toEqual({ scope: 'docker:*.example.com', key: '/wild.pub' });
    // "*.example.com" does not cover example.com itself.
    expect(key('example.com/y:1')).toEqual({ scope: 'docker:""', key: 'insecureAcceptAnything' });
    expect(key('blocked.example.org/y:1').key).toBe('reject');
  });

  it('falls back to the global default only when the transport has no matching scope and no "" default', () => {
    expect(requirementsFor(policy, { transport: 'oci', path: '/srv/trusted/app' }).scope).toBe('oci:/srv/trusted');
    expect(requirementsFor(policy, { transport: 'oci', path: '/home/me/app' }).scope).toBe('default');
    expect(requirementsFor(policy, { transport: 'dir', path: '/x' }).scope).toBe('default');
  });

  it('decides reject and insecureAcceptAnything without signatures, naming the scope', async () => {
    const reject = await decide(policy, { subject: docker('blocked.example.org/y:1'), digest: DIGEST });
    expect(reject.allowed).toBe(false);
    expect(reject.reason).toContain('blocked.example.org/y:1');
    expect(reject.reason).toContain('rejected by policy');
    expect(reject.reason).toContain('[scope docker:blocked.example.org]');
    const ok = await decide(policy, { subject: docker('example.com/y:1'), digest: DIGEST });
    expect(ok).toMatchObject({ allowed: true, scope: 'docker:""' });
    const unsigned = await decide(policy, { subject: { transport: 'oci', path: '/home/me/app' }, digest: DIGEST });
    expect(unsigned.allowed).toBe(false);
  });

  it('every requirement of a scope must accept (a list is an AND)', async () => {
    const p = parsePolicy(JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }, { type: 'reject' }] }));
    expect((await decide(p, { subject: docker('a.b/c:1'), digest: DIGEST })).allowed).toBe(false);
  });

  it('a sigstoreSigned requirement with no signature source refuses, saying a signature was required', async () => {
    const p = parsePolicy(JSON.stringify({ default: [{ type: 'sigstoreSigned', keyPath: '/k.pub' }] }));
    const d = await decide(p, { subject: { transport: 'oci', path: '/x' }, digest: DIGEST });
    expect(d.allowed).toBe(false);
    expect(d.reason).toContain('a signature was required');
  });
});

describe('signedIdentity matchers', () => {
  const m = (rule: SignedIdentity, intended: string, signed: string) => identityMatches(rule, parseReference(intended), signed);
  const byDigest = `reg.io/team/app@${DIGEST}`;

  it('matchExact: the same tagged or digested reference, nothing looser', () => {
    expect(m({ type: 'matchExact' }, 'reg.io/team/app:1', 'reg.io/team/app:1')).toBe(true);
    expect(m({ type: 'matchExact' }, 'reg.io/team/app:1', 'reg.io/team/app:2')).toBe(false);
    expect(m({ type: 'matchExact' }, 'reg.io/team/app:1', 'reg.io/team/app')).toBe(false);
    expect(m({ type: 'matchExact' }, byDigest, byDigest)).toBe(true);
    expect(m({ type: 'matchExact' }, byDigest, 'reg.io/team/app:1')).toBe(false);
    // Docker Hub normalisation on both sides.
    expect(m({ type: 'matchExact' }, 'busybox:latest', 'docker.io/library/busybox:latest')).toBe(true);
    expect(m({ type: 'matchExact' }, 'busybox:latest', 'index.docker.io/library/busybox:latest')).toBe(true);
  });

  it('matchRepoDigestOrExact: by digest the repository suffices; by tag the tag must match; a bare repository never does', () => {
    const r = { type: 'matchRepoDigestOrExact' } as const;
    expect(m(r, byDigest, 'reg.io/team/app:any')).toBe(true);
    expect(m(r, byDigest, 'reg.io/team/other:any')).toBe(false);
    expect(m(r, 'reg.io/team/app:1', 'reg.io/team/app:1')).toBe(true);
    expect(m(r, 'reg.io/team/app:1', 'reg.io/team/app:2')).toBe(false);
    // cosign's payloads name the repository alone: accepted by neither branch.
    expect(m(r, 'reg.io/team/app:1', 'reg.io/team/app')).toBe(false);
    expect(m(r, byDigest, 'reg.io/team/app')).toBe(false);
  });

  it('matchRepository: the same repository, whatever the tag or digest', () => {
    const r = { type: 'matchRepository' } as const;
    expect(m(r, 'reg.io/team/app:1', 'reg.io/team/app')).toBe(true);
    expect(m(r, byDigest, 'reg.io/team/app:9')).toBe(true);
    expect(m(r, 'reg.io/team/app:1', 'reg.io/team/app2')).toBe(false);
    expect(m(r, 'reg.io/team/app:1', 'other.io/team/app')).toBe(false);
    expect(m(r, 'reg.io/team/app:1', 'not a reference!')).toBe(false);
  });

  it("exactReference and exactRepository ignore the image's own name", () => {
    expect(m({ type: 'exactReference', dockerReference: 'up.io/app:1' }, 'mirror.local/x:5', 'up.io/app:1')).toBe(true);
    expect(m({ type: 'exactReference', dockerReference: 'up.io/app:1' }, 'mirror.local/x:5', 'up.io/app:2')).toBe(false);
    expect(m({ type: 'exactReference', dockerReference: 'up.io/app:1' }, 'mirror.local/x:5', 'up.io/app')).toBe(false);
    expect(m({ type: 'exactRepository', dockerRepository: 'up.io/app' }, 'mirror.local/x:5', 'up.io/app')).toBe(true);
    expect(m({ type: 'exactRepository', dockerRepository: 'up.io/app' }, 'mirror.local/x:5', 'up.io/app:7')).toBe(true);
    expect(m({ type: 'exactRepository', dockerRepository: 'up.io/app' }, 'mirror.local/x:5', 'up.io/other')).toBe(false);
  });

  it('remapIdentity: a mirror prefix is rewritten to the signed prefix on "/" boundaries, then matchRepoDigestOrExact applies', () => {
    const r: SignedIdentity = { type: 'remapIdentity', prefix: 'mirror.local:5000/dh', signedPrefix: 'docker.io' };
    expect(m(r, 'mirror.local:5000/dh/library/busybox:1', 'docker.io/library/busybox:1')).toBe(true);
    expect(m(r, `mirror.local:5000/dh/library/busybox@${DIGEST}`, 'docker.io/library/busybox:1')).toBe(true);
    expect(m(r, 'mirror.local:5000/dh/library/busybox:1', 'docker.io/library/busybox:2')).toBe(false);
    // "dhx" is not under "dh": no rewrite, so the mirror's own name must match.
    expect(m(r, 'mirror.local:5000/dhx/library/busybox:1', 'docker.io/library/busybox:1')).toBe(false);
    expect(m(r, 'mirror.local:5000/dhx/library/busybox:1', 'mirror.local:5000/dhx/library/busybox:1')).toBe(true);
  });
});
