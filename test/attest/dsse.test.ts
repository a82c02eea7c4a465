import { createHash, generateKeyPairSync, verify as nodeVerify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AttestationError, IN_TOTO_PAYLOAD_TYPE, pae, parseEnvelope, signEnvelope, verifyEnvelope } from '../../src/attest/dsse.js';
import { makeStatement, parseStatement, predicateTypeFor, statementCovers } from '../../src/attest/statement.js';
import { provenanceStatement, SLSA_PROVENANCE_V1 } from '../../src/attest/provenance.js';
import { loadSigningKey } from '../../src/attest/keys.js';

const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const digest = `sha256:${createHash('sha256').update('image').digest('hex')}` as const;

describe('DSSE envelopes', () => {
  it('signs the pre-authentication encoding, which an independent check with node:crypto accepts', () => {
    const payload = Buffer.from(JSON.stringify(makeStatement({ name: 'reg/app', digest }, 'https://spdx.dev/Document', { spdxVersion: 'SPDX-2.3' })));
    const env = signEnvelope(payload, IN_TOTO_PAYLOAD_TYPE, keys.privateKey);
    // The PAE written out by hand from the DSSE spec, not through our pae().
    const type = IN_TOTO_PAYLOAD_TYPE;
    const expected = Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(type)} ${type} ${payload.length} `), payload]);
    expect(pae(type, payload).equals(expected)).toBe(true);
    expect(nodeVerify('sha256', expected, keys.publicKey, Buffer.from(env.signatures[0]!.sig, 'base64'))).toBe(true);
    expect(Buffer.from(env.payload, 'base64').equals(payload)).toBe(true);
    expect(verifyEnvelope(parseEnvelope(JSON.stringify(env)), keys.publicKey).equals(payload)).toBe(true);
  });

  it("refuses a tampered payload, another key's signature, a garbage signature and a wrong payload type, each with its reason", () => {
    const payload = Buffer.from('{"_type":"https://in-toto.io/Statement/v1"}');
    const env = signEnvelope(payload, IN_TOTO_PAYLOAD_TYPE, keys.privateKey);
    const tampered = { ...env, payload: Buffer.from('{"_type":"https://in-toto.io/Statement/v1","x":1}').toString('base64') };
    expect(() => verifyEnvelope(tampered, keys.publicKey)).toThrow(/does not verify with the given public key/);
    expect(() => verifyEnvelope(env, other.publicKey)).toThrow(/does not verify with the given public key/);
    expect(() => verifyEnvelope({ ...env, signatures: [{ keyid: '', sig: Buffer.from('garbage').toString('base64') }] }, keys.publicKey)).toThrow(/malformed/);
    expect(() => verifyEnvelope({ ...env, signatures: [{ keyid: '', sig: '!!!' }] }, keys.publicKey)).toThrow(/malformed/);
    expect(() => verifyEnvelope(env, keys.publicKey, { payloadType: 'text/plain' })).toThrow(/payload type/);
    expect(() => parseEnvelope('{"payloadType":"x","payload":"","signatures":[]}')).toThrow(/no signatures/);
    expect(() => parseEnvelope('not json')).toThrow(AttestationError);
  });

  it('refuses keys that are not ECDSA P-256 or P-384', async () => {
    const ed = generateKeyPairSync('ed25519');
    await expect(loadSigningKey(ed.privateKey)).rejects.toThrow(/ECDSA P-256/);
  });
});

describe('in-toto statements and SLSA provenance', () => {
  it('a statement names its subject by digest, and is checked against the image digest', () => {
    const st = makeStatement({ name: 'reg/app', digest }, predicateTypeFor('cyclonedx'), { bomFormat: 'CycloneDX' });
    expect(st._type).toBe('https://in-toto.io/Statement/v1');
    expect(st.subject).toEqual([{ name: 'reg/app', digest: { sha256: digest.slice(7) } }]);
    expect(st.predicateType).toBe('https://cyclonedx.org/bom');
    expect(statementCovers(parseStatement(Buffer.from(JSON.stringify(st))), digest)).toBe(true);
    expect(statementCovers(st, `sha256:${'0'.repeat(64)}`)).toBe(false);
    expect(() => parseStatement(Buffer.from('{"_type":"x"}'))).toThrow(/not an in-toto statement/);
    expect(() => parseStatement(Buffer.from('{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x"}'))).toThrow(/no subject/);
    expect(() => predicateTypeFor('bogus')).toThrow(/unknown attestation type/);
  });

  it('provenanceStatement records source, commit, Containerfile digest, build args and the builder version', () => {
    const cf = `sha256:${createHash('sha256').update('FROM scratch\n').digest('hex')}` as const;
    const st = provenanceStatement({
      subject: { name: 'reg/app', digest },
      source: { uri: 'git+https://example.com/org/app@refs/heads/main', commit: 'a'.repeat(40) },
      containerfile: { path: 'Containerfile', digest: cf },
      buildArgs: { VERSION: '1.2.3' },
      target: 'runtime',
      platforms: ['linux/amd64'],
      dependencies: [{ uri: 'pkg:oci/base@sha256:' + 'b'.repeat(64), digest: { sha256: 'b'.repeat(64) } }],
      builder: { version: '0.1.0' },
      invocationId: 'default/app/uid-1/3',
      startedOn: new Date('2026-01-01T00:00:00Z'),
      finishedOn: new Date('2026-01-01T00:01:00Z'),
    });
    expect(st.predicateType).toBe(SLSA_PROVENANCE_V1);
    expect(st.predicate.buildDefinition.externalParameters).toEqual({
      source: { uri: 'git+https://example.com/org/app@refs/heads/main', digest: { gitCommit: 'a'.repeat(40) } },
      containerfile: { path: 'Containerfile', digest: { sha256: cf.slice(7) } },
      buildArgs: { VERSION: '1.2.3' },
      target: 'runtime',
      platforms: ['linux/amd64'],
    });
    expect(st.predicate.buildDefinition.resolvedDependencies).toHaveLength(3);
    expect(st.predicate.runDetails.builder).toEqual({ id: 'https://stevedore.dev/builder@v0.1.0', version: { stevedore: '0.1.0' } });
    expect(st.predicate.runDetails.metadata).toEqual({
      invocationId: 'default/app/uid-1/3',
      startedOn: '2026-01-01T00:00:00.000Z',
      finishedOn: '2026-01-01T00:01:00.000Z',
    });
    expect(() => provenanceStatement({ subject: { name: 'x', digest }, containerfile: { path: '', digest: cf }, builder: { version: '1' } })).toThrow(
      /Containerfile/,
    );
  });
});
