/**
 * Keyless signing and verification (Fulcio certificate, Rekor entry, offline verification against
 * a trusted root), with Fulcio and Rekor played by @sigstore/mock: the real services are out of
 * reach here. The CA, CT log and transparency log keys are made by the test, so the trusted root
 * that verification uses is the test's own, and a bundle from any other CA is refused.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fulcioHandler, initializeCA, initializeCTLog, initializeTLog, rekorHandler, type HandlerFn } from '@sigstore/mock';
import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { parseReference } from '../../src/oci/reference.js';
import { loadTrustedRoot, signImageKeyless } from '../../src/sign/keyless.js';
import { verifyImage } from '../../src/sign/verify.js';
import { parseImageName } from '../../src/transports/index.js';
import { makeRandomImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { cleanupCli, stevedore } from '../cli/stevedore.js';
import { cosign } from './cosign.js';

const FULCIO = 'https://fulcio.mock.test';
const REKOR = 'https://rekor.mock.test';
const ISSUER = 'https://token.actions.mock.test';
const IDENTITY = 'https://github.com/stevedore/stevedore/.github/workflows/release.yml@refs/heads/main';

const temps = new TempDirs();
let reg: TestRegistry;
let dir: string;
let image: FixtureImage;
let rootPath: string;
let fulcio: { path: string; fn: HandlerFn };
let rekor: { path: string; fn: HandlerFn };

const ec = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const b64 = (b: ArrayBuffer | ArrayBufferView) =>
  (b instanceof ArrayBuffer ? Buffer.from(new Uint8Array(b)) : Buffer.from(new Uint8Array(b.buffer as ArrayBuffer, b.byteOffset, b.byteLength))).toString(
    'base64',
  );
const b64url = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');

/** An OIDC token as Fulcio receives it; the mock reads its claims without checking a signature. */
function idToken(sub: string): string {
  return `${b64url({ alg: 'RS256', typ: 'JWT' })}.${b64url({ iss: ISSUER, sub, aud: 'sigstore', exp: Math.floor(Date.now() / 1000) + 600 })}.c2ln`;
}

/** Routes the next Fulcio and Rekor requests (sigstore-js speaks node:http) to the mock handlers. */
function intercept(): void {
  for (const [base, h] of [
    [FULCIO, fulcio],
    [REKOR, rekor],
  ] as const) {
    nock(base)
      .post(h.path)
      .reply(async (_uri, body) => {
        const r = await h.fn(typeof body === 'string' ? body : JSON.stringify(body));
        return [r.statusCode, r.response, { 'Content-Type': r.contentType ?? 'text/plain' }];
      });
  }
}

async function makeTrust(name: string): Promise<{ path: string; fulcio: typeof fulcio; rekor: typeof rekor }> {
  const ctKeys = ec();
  const ctlog = await initializeCTLog(ctKeys);
  const ca = await initializeCA(ec(), ctlog);
  const tlogKeys = ec();
  const tlog = await initializeTLog(REKOR, tlogKeys);
  const start = { start: '2000-01-01T00:00:00Z' };
  const key = (raw: Buffer | ArrayBufferView) => ({ rawBytes: b64(raw), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: start });
  const root = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [
      {
        baseUrl: REKOR,
        hashAlgorithm: 'SHA2_256',
        publicKey: key(tlog.publicKey),
        logId: { keyId: createHash('sha256').update(tlog.publicKey).digest('base64') },
      },
    ],
    certificateAuthorities: [
      {
        subject: { organization: 'sigstore.mock', commonName: 'sigstore' },
        uri: FULCIO,
        certChain: { certificates: [{ rawBytes: b64(ca.rootCertificate) }] },
        validFor: start,
      },
    ],
    ctlogs: [{ baseUrl: 'https://ctfe.mock.test', hashAlgorithm: 'SHA2_256', publicKey: key(ctlog.publicKey), logId: { keyId: b64(ctlog.logID) } }],
    timestampAuthorities: [],
  };
  const path = join(dir, `${name}-trusted-root.json`);
  await writeFile(path, JSON.stringify(root));
  return { path, fulcio: fulcioHandler(ca), rekor: rekorHandler(tlog) };
}

beforeAll(async () => {
  reg = await startRegistry({ name: 'keyless' });
  dir = await temps.make('keyless');
  image = await makeRandomImage({ layers: 1, layerSize: 8 * 1024, layoutDir: await temps.make('img') });
  await copyReference(parseImageName(image.ociRef), parseImageName(`docker://${reg.host}/app:1`));
  const trust = await makeTrust('ours');
  rootPath = trust.path;
  fulcio = trust.fulcio;
  rekor = trust.rekor;
});

afterAll(async () => {
  nock.cleanAll();
  await reg?.stop();
  await cleanupCli();
  await temps.cleanup();
});

describe('keyless signatures (Fulcio + Rekor mocked)', () => {
  it('signs with a Fulcio certificate for the OIDC identity, logs to Rekor, and stores the bundle as a referrer', async () => {
    intercept();
    const result = await signImageKeyless(parseReference(`${reg.host}/app:1`), {
      identityToken: idToken(IDENTITY),
      fulcioURL: FULCIO,
      rekorURL: REKOR,
      // The mock log stores the proposed entry as sent; a dsse entry is only provable once a real
      // Rekor has canonicalised it, an intoto entry as sent.
      tlogEntryType: 'intoto',
    });
    expect(result.digest).toBe(image.manifest.digest);
    expect(result.stored[0]!.format).toBe('bundle');
    expect(nock.isDone()).toBe(true);
  });

  it('verifies offline against the trusted root, for the expected identity and issuer (library and CLI)', async () => {
    const trustMaterial = await loadTrustedRoot(rootPath);
    const report = await verifyImage(parseReference(`${reg.host}/app:1`), [], {
      keyless: { trust: { trustMaterial }, identity: { subjectAlternativeName: IDENTITY, issuer: ISSUER } },
    });
    expect(report.verified).toHaveLength(1);
    expect(report.verified[0]!.signer).toEqual({ subjectAlternativeName: IDENTITY, issuer: ISSUER });
    const cli = await stevedore([
      'verify',
      '--trusted-root',
      rootPath,
      '--certificate-identity',
      IDENTITY,
      '--certificate-oidc-issuer',
      ISSUER,
      '-o',
      'json',
      `${reg.host}/app:1`,
    ]);
    expect(cli.code, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout).verified[0].signer.subjectAlternativeName).toBe(IDENTITY);
    const byRegexp = await stevedore([
      'verify',
      '--trusted-root',
      rootPath,
      '--certificate-identity-regexp',
      '^https://github\\.com/stevedore/',
      '--certificate-oidc-issuer',
      ISSUER,
      `${reg.host}/app:1`,
    ]);
    expect(byRegexp.code, byRegexp.stderr).toBe(0);
  });

  it('cosign verifies the keyless bundle against the same trusted root', async () => {
    const v = await cosign([
      'verify',
      '--new-bundle-format',
      '--trusted-root',
      rootPath,
      '--certificate-identity',
      IDENTITY,
      '--certificate-oidc-issuer',
      ISSUER,
      '--allow-insecure-registry',
      `${reg.host}/app:1`,
    ]);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stderr).toContain('The code-signing certificate was verified using trusted certificate authority certificates');
    const wrong = await cosign([
      'verify',
      '--new-bundle-format',
      '--trusted-root',
      rootPath,
      '--certificate-identity',
      'https://github.com/mallory/x',
      '--certificate-oidc-issuer',
      ISSUER,
      '--allow-insecure-registry',
      `${reg.host}/app:1`,
    ]);
    expect(wrong.code).not.toBe(0);
  });

  it('refuses another identity, another issuer, and a trusted root that does not hold the CA', async () => {
    const trustMaterial = await loadTrustedRoot(rootPath);
    const ref = parseReference(`${reg.host}/app:1`);
    await expect(
      verifyImage(ref, [], { keyless: { trust: { trustMaterial }, identity: { subjectAlternativeName: 'https://github.com/mallory/x', issuer: ISSUER } } }),
    ).rejects.toThrow(/keyless bundle refused/);
    await expect(
      verifyImage(ref, [], { keyless: { trust: { trustMaterial }, identity: { subjectAlternativeName: IDENTITY, issuer: 'https://evil.example' } } }),
    ).rejects.toThrow(/keyless bundle refused/);
    const other = await makeTrust('other');
    const r = await stevedore([
      'verify',
      '--trusted-root',
      other.path,
      '--certificate-identity',
      IDENTITY,
      '--certificate-oidc-issuer',
      ISSUER,
      `${reg.host}/app:1`,
    ]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('keyless bundle refused');
  });

  it('a keyless bundle is not mistaken for a keyed one, and verify asks for what it needs', async () => {
    const pub = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    await writeFile(join(dir, 'k.pub'), pub);
    const r = await stevedore(['verify', '--key', join(dir, 'k.pub'), `${reg.host}/app:1`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('keyless bundle, but no trusted root and identity were given');
    const none = await stevedore(['verify', `${reg.host}/app:1`]);
    expect(none.code).toBe(125);
    expect(none.stderr).toContain('--key, or --trusted-root with --certificate-identity');
  });
});
