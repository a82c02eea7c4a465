import { describe, expect, it } from 'vitest';
import { InvalidPolicyError, parsePolicy } from '../../src/policy/parse.js';

const accept = [{ type: 'insecureAcceptAnything' }];
const keyData = Buffer.from('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n').toString('base64');

function refused(doc: unknown, message: RegExp | string): void {
  const text = typeof doc === 'string' ? doc : JSON.stringify(doc);
  let err: unknown;
  try {
    parsePolicy(text);
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${text} to be refused`).toBeInstanceOf(InvalidPolicyError);
  if (typeof message === 'string') expect((err as Error).message).toContain(message);
  else expect((err as Error).message).toMatch(message);
}

describe('containers-policy.json parsing', () => {
  it('reads the default policy of a Fedora/Debian install', () => {
    const p = parsePolicy(JSON.stringify({ default: accept, transports: { 'docker-daemon': { '': accept } } }));
    expect(p.default).toEqual(accept);
    expect(p.transports['docker-daemon']!['']).toEqual(accept);
  });

  it('reads sigstoreSigned with every key source and defaults signedIdentity to matchRepoDigestOrExact', () => {
    const p = parsePolicy(
      JSON.stringify({
        default: [{ type: 'reject' }],
        transports: {
          docker: {
            'a.example/x': [{ type: 'sigstoreSigned', keyPath: '/k.pub' }],
            'a.example/y': [{ type: 'sigstoreSigned', keyPaths: ['/k1.pub', '/k2.pub'], signedIdentity: { type: 'matchRepository' } }],
            'a.example/z': [{ type: 'sigstoreSigned', keyData }],
            'a.example/w': [{ type: 'sigstoreSigned', keyDatas: [keyData] }],
            'a.example/f': [
              { type: 'sigstoreSigned', fulcio: { caData: keyData, oidcIssuer: 'https://issuer', subjectEmail: 'a@b' }, rekorPublicKeyData: keyData },
            ],
          },
        },
      }),
    );
    const d = p.transports.docker!;
    expect(d['a.example/x']![0]).toMatchObject({ type: 'sigstoreSigned', keyPath: '/k.pub', signedIdentity: { type: 'matchRepoDigestOrExact' } });
    expect(d['a.example/y']![0]).toMatchObject({ keyPaths: ['/k1.pub', '/k2.pub'], signedIdentity: { type: 'matchRepository' } });
    expect((d['a.example/z']![0] as { keyData: Buffer }).keyData.toString()).toContain('BEGIN PUBLIC KEY');
    expect(d['a.example/f']![0]).toMatchObject({ fulcio: { oidcIssuer: 'https://issuer', subjectEmail: 'a@b' } });
  });

  it('reads every signedIdentity matcher', () => {
    const ids = [
      { type: 'matchExact' },
      { type: 'matchRepoDigestOrExact' },
      { type: 'matchRepository' },
      { type: 'exactReference', dockerReference: 'docker.io/library/busybox:latest' },
      { type: 'exactRepository', dockerRepository: 'docker.io/library/busybox' },
      { type: 'remapIdentity', prefix: 'mirror.local:5000/dh', signedPrefix: 'docker.io' },
    ];
    const p = parsePolicy(JSON.stringify({ default: ids.map((signedIdentity) => ({ type: 'sigstoreSigned', keyPath: '/k', signedIdentity })) }));
    expect(p.default.map((r) => (r as { signedIdentity: { type: string } }).signedIdentity.type)).toEqual(ids.map((i) => i.type));
  });

  it('rejects the whole file for an unknown field anywhere, naming it and where it is', () => {
    refused({ default: accept, extra: 1 }, 'unknown field "extra"');
    refused({ default: [{ type: 'insecureAcceptAnything', why: 'x' }] }, 'default[0]: unknown field "why"');
    refused({ default: accept, transports: { docker: { 'a.b/c': [{ type: 'sigstoreSigned', keyPath: '/k', keyPathh: '/k' }] } } }, 'unknown field "keyPathh"');
    refused({ default: [{ type: 'sigstoreSigned', keyPath: '/k', signedIdentity: { type: 'matchRepository', x: 1 } }] }, 'unknown field "x"');
    refused(
      { default: [{ type: 'sigstoreSigned', keyPath: '/k', fulcio: { caPath: '/ca', oidcIssuer: 'i', subjectEmail: 'e', extra: 1 } }] },
      'unknown field "extra"',
    );
  });

  it('rejects unknown requirement and identity types, a missing default and empty requirement lists', () => {
    refused({ default: [{ type: 'acceptEverything' }] }, 'unknown requirement type "acceptEverything"');
    refused({ default: [{ type: 'sigstoreSigned', keyPath: '/k', signedIdentity: { type: 'matchAnything' } }] }, 'unknown signedIdentity type "matchAnything"');
    refused({ transports: {} }, 'the "default" policy is missing');
    refused({ default: [] }, 'must not be empty');
    refused({ default: accept, transports: { docker: { 'a.b/c': [] } } }, 'must not be empty');
    refused('{"default": [', /not valid JSON/);
    refused('[]', 'must be a JSON object');
  });

  it('rejects duplicated fields, which JSON.parse would silently resolve', () => {
    refused('{"default":[{"type":"reject"}],"default":[{"type":"insecureAcceptAnything"}]}', 'duplicated field "default"');
    refused('{"default":[{"type":"sigstoreSigned","keyPath":"/a","keyPath":"/b"}]}', 'duplicated field "keyPath"');
    refused(
      '{"default":[{"type":"reject"}],"transports":{"docker":{"a.b/c":[{"type":"reject"}],"a.b/c":[{"type":"insecureAcceptAnything"}]}}}',
      'duplicated field "a.b/c"',
    );
  });

  it('refuses contradictory or incomplete requirements', () => {
    refused(
      { default: [{ type: 'sigstoreSigned', keyPath: '/a', keyData }] },
      'exactly one of keyPath, keyPaths, keyData, keyDatas and fulcio must be specified, keyPath and keyData given',
    );
    refused({ default: [{ type: 'sigstoreSigned' }] }, 'none given');
    refused({ default: [{ type: 'sigstoreSigned', keyPaths: [] }] }, 'keyPaths contains no entries');
    refused(
      { default: [{ type: 'sigstoreSigned', keyPath: '/a', rekorPublicKeyPath: '/r', rekorPublicKeyData: keyData }] },
      'at most one of rekorPublicKeyPath, rekorPublicKeyData',
    );
    refused({ default: [{ type: 'sigstoreSigned', fulcio: { caPath: '/ca', oidcIssuer: 'i', subjectEmail: 'e' } }] }, 'fulcio needs a Rekor public key');
    refused(
      { default: [{ type: 'sigstoreSigned', fulcio: { caPath: '/ca', caData: keyData, oidcIssuer: 'i', subjectEmail: 'e' }, rekorPublicKeyPath: '/r' }] },
      'caPath and caData cannot be used together',
    );
    refused({ default: [{ type: 'sigstoreSigned', fulcio: { caPath: '/ca', subjectEmail: 'e' }, rekorPublicKeyPath: '/r' }] }, 'oidcIssuer not specified');
    refused({ default: [{ type: 'signedBy', keyType: 'GPGKeys' }] }, 'exactly one of keyPath, keyPaths and keyData');
    refused({ default: [{ type: 'signedBy', keyType: 'PGP', keyPath: '/k' }] }, 'unrecognized keyType "PGP"');
    refused({ default: [{ type: 'sigstoreSigned', keyData: 'not base64!' }] }, 'keyData must be base64-encoded data');
  });

  it('validates the values of identity matchers', () => {
    refused(
      { default: [{ type: 'sigstoreSigned', keyPath: '/k', signedIdentity: { type: 'exactReference', dockerReference: 'docker.io/library/busybox' } }] },
      'contains neither a tag nor a digest',
    );
    refused({ default: [{ type: 'sigstoreSigned', keyPath: '/k', signedIdentity: { type: 'exactReference' } }] }, 'field "dockerReference" is required');
    refused(
      { default: [{ type: 'sigstoreSigned', keyPath: '/k', signedIdentity: { type: 'exactRepository', dockerRepository: 'team/App' } }] },
      'invalid format of "team/App"',
    );
    refused(
      {
        default: [{ type: 'sigstoreSigned', keyPath: '/k', signedIdentity: { type: 'remapIdentity', prefix: 'docker.io/Library', signedPrefix: 'docker.io' } }],
      },
      'prefix "docker.io/Library" is not valid',
    );
  });

  it('validates scopes the way each transport does', () => {
    refused({ default: accept, transports: { docker: { 'example*.com': accept } } }, 'wildcards are only allowed as a "*." prefix');
    refused({ default: accept, transports: { docker: { '*.example.com/repo': accept } } }, 'wildcards are only allowed');
    refused({ default: accept, transports: { oci: { 'relative/dir': accept } } }, 'scope must be an absolute path');
    refused({ default: accept, transports: { dir: { '/': accept } } }, 'use the transport default scope');
    refused({ default: accept, transports: { oci: { '/a/../b': accept } } }, 'non-canonical path');
    const p = parsePolicy(
      JSON.stringify({ default: accept, transports: { docker: { '*.example.com': accept }, oci: { '/srv/images:v1': accept }, atomic: { anything: accept } } }),
    );
    expect(Object.keys(p.transports)).toEqual(['docker', 'oci', 'atomic']);
  });
});
