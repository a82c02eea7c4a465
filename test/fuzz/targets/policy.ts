import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { InvalidPolicyError, parsePolicy } from '../../../src/policy/parse.js';
import type { Policy } from '../../../src/policy/types.js';
import { assertContract, bytes, refusesWithSync, text, type FuzzTarget } from '../lib/target.js';

/** A policy as JSON again, byte fields as the base64 the format carries them in. */
export function policyJson(p: Policy): string {
  return JSON.stringify(p, function (this: Record<string, unknown>, key: string, value: unknown) {
    const raw = this[key];
    return Buffer.isBuffer(raw) ? raw.toString('base64') : value;
  });
}

const identity = fc.oneof(
  fc.constantFrom({ type: 'matchExact' }, { type: 'matchRepoDigestOrExact' }, { type: 'matchRepository' }, { type: 'nope' }, null),
  fc.record({ type: fc.constant('exactReference'), dockerReference: fc.constantFrom('busybox:1', 'a/b@sha256:' + '0'.repeat(64), 'BAD', 'q.io/x') }),
  fc.record({ type: fc.constant('exactRepository'), dockerRepository: fc.constantFrom('busybox', 'q.io/a/b', ':') }),
  fc.record({
    type: fc.constant('remapIdentity'),
    prefix: fc.constantFrom('q.io', 'q.io/a', 'a..b', 'x'.repeat(40) + '!'),
    signedPrefix: fc.constantFrom('r.io', 'r.io/b', ''),
  }),
);
const key = fc.constantFrom(
  { keyPath: '/k.pub' },
  { keyPaths: ['/a', '/b'] },
  { keyPaths: [] },
  { keyData: 'QUJD' },
  { keyData: 'not base64!' },
  { keyDatas: ['QUJD'] },
  {},
);
const requirement = fc.oneof(
  fc.constantFrom({ type: 'insecureAcceptAnything' }, { type: 'reject' }, { type: 'reject', extra: 1 }, { type: 'unknown' }, 'reject', null),
  fc
    .tuple(key, fc.option(identity, { nil: undefined }), fc.constantFrom('GPGKeys', 'signedByX509CAs', 'bogus'))
    .map(([k, id, kt]) => ({ type: 'signedBy', keyType: kt, ...k, ...(id === undefined ? {} : { signedIdentity: id }) })),
  fc
    .tuple(
      key,
      fc.option(identity, { nil: undefined }),
      fc.option(
        fc.record({ caPath: fc.constant('/ca.pem'), oidcIssuer: fc.constantFrom('https://i', ''), subjectEmail: fc.constant('a@b') }, { requiredKeys: [] }),
        { nil: undefined },
      ),
      fc.constantFrom({}, { rekorPublicKeyPath: '/r.pub' }, { rekorPublicKeyData: 'QUJD' }, { rekorPublicKeyPaths: [] }),
    )
    .map(([k, id, fulcio, rekor]) => ({
      type: 'sigstoreSigned',
      ...k,
      ...(fulcio ? { fulcio } : {}),
      ...rekor,
      ...(id === undefined ? {} : { signedIdentity: id }),
    })),
  fc.record({ type: fc.constant('signedBaseLayer'), baseLayerIdentity: identity }),
);
const scopes = fc.dictionary(
  fc.constantFrom('', 'docker.io', '*.example.com', 'a*b', '/srv/x', '/srv/x/', '/', 'rel/x', '/srv/x:tag', 'q.io/a/b'),
  fc.array(requirement, { maxLength: 2 }),
  { maxKeys: 3 },
);

export const policyTarget: FuzzTarget = {
  name: 'policy',
  contract: 'any bytes → a policy p with parse(serialize(p)) = p, or InvalidPolicyError; never another exception; ≤ 250 ms + 20 ms/KiB',
  sources: ['src/policy/parse.ts', 'src/policy/json-strict.ts', 'src/oci/reference.ts'],
  dictionary: [
    '"default":[',
    '"transports":{',
    '"docker":{',
    '"oci":{',
    '{"type":"insecureAcceptAnything"}',
    '{"type":"reject"}',
    '"type":"signedBy"',
    '"type":"sigstoreSigned"',
    '"keyType":"GPGKeys"',
    '"keyPath":"/k"',
    '"keyData":"QUJD"',
    '"signedIdentity":{"type":"matchRepository"}',
    '"type":"remapIdentity","prefix":"q.io","signedPrefix":"r.io"',
    '"fulcio":{"caPath":"/c","oidcIssuer":"i","subjectEmail":"e"}',
    '"rekorPublicKeyPath":"/r"',
    '"\\u0022"',
    '"\\\\"',
    '{',
    '}',
    '[',
    ']',
    ':',
    ',',
    '"',
  ],
  generate: fc
    .record(
      {
        default: fc.array(requirement, { maxLength: 3 }),
        transports: fc.dictionary(fc.constantFrom('docker', 'oci', 'dir', 'atomic', 'docker-daemon', 'oci-archive'), scopes, { maxKeys: 3 }),
      },
      { requiredKeys: [] },
    )
    .map((d) => bytes(JSON.stringify(d))),
  run(input) {
    const policy = refusesWithSync([InvalidPolicyError], () => parsePolicy(text(input), 'policy.json'));
    if (!policy) return;
    const again = refusesWithSync([InvalidPolicyError], () => parsePolicy(policyJson(policy), 'policy.json'));
    assertContract(again !== undefined, `a parsed policy does not parse again once serialised: ${policyJson(policy).slice(0, 200)}`);
    assertContract(isDeepStrictEqual(again, policy), `parse(serialize(p)) != p: ${policyJson(policy).slice(0, 200)}`);
  },
};
