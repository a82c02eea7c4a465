/**
 * sigstoreSigned with `fulcio` + a Rekor key, and with a key + a Rekor key, on cosign's legacy
 * signature format: the `.sig` layer carries the Fulcio certificate, its chain and the Rekor bundle
 * (SET) as annotations. The test plays Fulcio (a CA made here issuing a short-lived certificate with
 * an e-mail SAN and the OIDC issuer extensions) and Rekor (a log key signing the entry's SET), and
 * the real cosign confirms the result is a signature it accepts, against the same roots.
 */
// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import { createHash, generateKeyPairSync, KeyObject, sign as nodeSign, webcrypto } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { json } from '@sigstore/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { evaluatePolicy } from '../../src/policy/image-policy.js';
import { parsePolicy } from '../../src/policy/parse.js';
import { RegistryClient } from '../../src/registry/client.js';
import { encodeSimpleSigning } from '../../src/sign/payload.js';
import { appendSignature, CERTIFICATE_ANNOTATION, CHAIN_ANNOTATION, REKOR_BUNDLE_ANNOTATION, SIGNATURE_ANNOTATION } from '../../src/sign/signature-image.js';
import { parseImageName } from '../../src/transports/index.js';
import { makeRandomImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { cosign } from '../sign/cosign.js';

const EMAIL = 'release-bot@stevedore.test';
const ISSUER = 'https://oidc.stevedore.test';
const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const temps = new TempDirs();
let reg: TestRegistry;
let client: RegistryClient;
let dir: string;
let image: FixtureImage;
const files = { ca: '', otherCa: '', rekorPub: '', otherRekorPub: '', signingPub: '' };
let ca: { cert: x509.X509Certificate; keys: webcrypto.CryptoKeyPair };
let rekorKey: KeyObject;
let otherRekorKey: KeyObject;
let signingKey: { privateKey: KeyObject; publicKey: KeyObject };

const ref = (s: string) => `${reg.host}/${s}`;

function utf8String(s: string): Buffer {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([0x0c, b.length]), b]);
}

async function makeCa(name: string): Promise<{ cert: x509.X509Certificate; keys: webcrypto.CryptoKeyPair }> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: `CN=${name},O=stevedore test`,
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: new Date(Date.now() + 24 * 3600_000),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  return { cert, keys };
}

/** A Fulcio-style leaf: ten minutes of validity, an e-mail SAN, both OIDC issuer extensions. */
async function issueLeaf(issuer: { cert: x509.X509Certificate; keys: webcrypto.CryptoKeyPair }, opts: { email?: string; oidcIssuer?: string } = {}) {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: Date.now().toString(16),
    subject: '',
    issuer: issuer.cert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 10 * 60_000),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: issuer.keys.privateKey,
    extensions: [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.codeSigning]),
      new x509.SubjectAlternativeNameExtension([{ type: 'email', value: opts.email ?? EMAIL }], true),
      new x509.Extension('1.3.6.1.4.1.57264.1.1', false, Buffer.from(opts.oidcIssuer ?? ISSUER)),
      new x509.Extension('1.3.6.1.4.1.57264.1.8', false, utf8String(opts.oidcIssuer ?? ISSUER)),
    ],
  });
  return { pem: cert.toString('pem'), privateKey: KeyObject.from(keys.privateKey) };
}

/** What Rekor returns for a hashedrekord entry, with its SET signed by `logKey`. */
function rekorBundle(logKey: KeyObject, payload: Buffer, signature: Buffer, signerPem: string, integratedTime = Math.floor(Date.now() / 1000)): string {
  const body = {
    apiVersion: '0.0.1',
    kind: 'hashedrekord',
    spec: {
      data: { hash: { algorithm: 'sha256', value: createHash('sha256').update(payload).digest('hex') } },
      signature: { content: signature.toString('base64'), publicKey: { content: Buffer.from(signerPem).toString('base64') } },
    },
  };
  const Payload = {
    body: Buffer.from(json.canonicalize(body)).toString('base64'),
    integratedTime,
    logIndex: 4242,
    logID: createHash('sha256').update(logPublicSpki(logKey)).digest('hex'),
  };
  const set = nodeSign('sha256', Buffer.from(json.canonicalize(Payload)), logKey);
  return JSON.stringify({ SignedEntryTimestamp: set.toString('base64'), Payload });
}

const publicOf = new Map<KeyObject, KeyObject>();
function logPublicSpki(priv: KeyObject): Buffer {
  return publicOf.get(priv)!.export({ type: 'spki', format: 'der' });
}

function newLogKey(): KeyObject {
  const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  publicOf.set(kp.privateKey, kp.publicKey);
  return kp.privateKey;
}

async function pushImage(repo: string): Promise<void> {
  await copyReference(parseImageName(image.ociRef), parseImageName(`docker://${ref(`${repo}:1`)}`));
}

/** A keyless legacy signature of `repo:1`, as cosign stores one, with the knobs a forger would turn. */
async function signKeyless(
  repo: string,
  opts: { email?: string; oidcIssuer?: string; issuerCa?: typeof ca; logKey?: KeyObject; integratedTime?: number } = {},
) {
  await pushImage(repo);
  const leaf = await issueLeaf(opts.issuerCa ?? ca, opts);
  const payload = encodeSimpleSigning(ref(repo), image.manifest.digest);
  const signature = nodeSign('sha256', payload, leaf.privateKey);
  await appendSignature(client, repo, image.manifest.digest, payload, {
    [SIGNATURE_ANNOTATION]: signature.toString('base64'),
    [CERTIFICATE_ANNOTATION]: leaf.pem,
    [CHAIN_ANNOTATION]: (opts.issuerCa ?? ca).cert.toString('pem'),
    [REKOR_BUNDLE_ANNOTATION]: rekorBundle(opts.logKey ?? rekorKey, payload, signature, leaf.pem, opts.integratedTime),
  });
}

const fulcioPolicy = (over: Record<string, unknown> = {}) =>
  parsePolicy(
    JSON.stringify({
      default: [
        {
          type: 'sigstoreSigned',
          fulcio: { caPath: files.ca, oidcIssuer: ISSUER, subjectEmail: EMAIL, ...over },
          rekorPublicKeyPath: files.rekorPub,
          signedIdentity: { type: 'matchRepository' },
        },
      ],
    }),
  );

beforeAll(async () => {
  reg = await startRegistry({ name: 'fulcio' });
  client = new RegistryClient({ registry: reg.host });
  dir = await temps.make('fulcio');
  image = await makeRandomImage({ layers: 1, layerSize: 4096, layoutDir: await temps.make('img') });
  ca = await makeCa('test fulcio');
  const other = await makeCa('other ca');
  rekorKey = newLogKey();
  otherRekorKey = newLogKey();
  signingKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  files.ca = join(dir, 'fulcio-ca.pem');
  files.otherCa = join(dir, 'other-ca.pem');
  files.rekorPub = join(dir, 'rekor.pub');
  files.otherRekorPub = join(dir, 'other-rekor.pub');
  files.signingPub = join(dir, 'signing.pub');
  await writeFile(files.ca, ca.cert.toString('pem'));
  await writeFile(files.otherCa, other.cert.toString('pem'));
  await writeFile(files.rekorPub, publicOf.get(rekorKey)!.export({ type: 'spki', format: 'pem' }));
  await writeFile(files.otherRekorPub, publicOf.get(otherRekorKey)!.export({ type: 'spki', format: 'pem' }));
  await writeFile(files.signingPub, signingKey.publicKey.export({ type: 'spki', format: 'pem' }));
});

afterAll(async () => {
  await client?.close();
  await reg?.stop();
  await temps.cleanup();
});

describe('sigstoreSigned with fulcio and a Rekor key', () => {
  it('accepts a keyless signature whose certificate chains to the CA and names the e-mail and issuer, and cosign agrees', async () => {
    await signKeyless('keyless');
    const d = await evaluatePolicy(fulcioPolicy(), ref('keyless:1'));
    expect(d.reason).toContain('accepted');
    expect(d.allowed).toBe(true);
    const v = await cosign(
      ['verify', '--certificate-identity', EMAIL, '--certificate-oidc-issuer', ISSUER, '--insecure-ignore-sct', '--allow-insecure-registry', ref('keyless:1')],
      {
        env: { SIGSTORE_ROOT_FILE: files.ca, SIGSTORE_REKOR_PUBLIC_KEY: files.rekorPub },
      },
    );
    expect(v.code, v.stderr).toBe(0);
    expect(v.stderr).toContain('Existence of the claims in the transparency log was verified offline');
    expect(v.stderr).toContain('The code-signing certificate was verified using trusted certificate authority certificates');
  });

  it('refuses another e-mail, another issuer, an untrusted CA, and names which', async () => {
    const email = await evaluatePolicy(fulcioPolicy({ subjectEmail: 'someone@else.test' }), ref('keyless:1'));
    expect(email.allowed).toBe(false);
    expect(email.reason).toContain(`required e-mail "someone@else.test" not found (got "${EMAIL}")`);
    const issuer = await evaluatePolicy(fulcioPolicy({ oidcIssuer: 'https://evil.test' }), ref('keyless:1'));
    expect(issuer.reason).toContain(`OIDC issuer is "${ISSUER}", not "https://evil.test"`);
    const untrusted = await evaluatePolicy(fulcioPolicy({ caPath: files.otherCa }), ref('keyless:1'));
    expect(untrusted.reason).toContain('does not chain to a trusted CA');
  });

  it('refuses a certificate from another CA even when it carries that CA as its own chain', async () => {
    await signKeyless('rogue', { issuerCa: await makeCa('rogue ca') });
    const d = await evaluatePolicy(fulcioPolicy(), ref('rogue:1'));
    expect(d.allowed).toBe(false);
    expect(d.reason).toContain('does not chain to a trusted CA');
  });

  it('refuses a Rekor bundle signed by another log, and one logged after the certificate expired', async () => {
    await signKeyless('otherlog', { logKey: otherRekorKey });
    expect((await evaluatePolicy(fulcioPolicy(), ref('otherlog:1'))).reason).toContain('signed entry timestamp does not verify with the Rekor public key');
    await signKeyless('late', { integratedTime: Math.floor(Date.now() / 1000) + 180 - 3600 });
    expect((await evaluatePolicy(fulcioPolicy(), ref('late:1'))).reason).toMatch(/Fulcio certificate: not valid at/);
  });

  it('refuses a signature with no certificate or no Rekor bundle', async () => {
    await pushImage('bare');
    const payload = encodeSimpleSigning(ref('bare'), image.manifest.digest);
    await appendSignature(client, 'bare', image.manifest.digest, payload, {
      [SIGNATURE_ANNOTATION]: nodeSign('sha256', payload, signingKey.privateKey).toString('base64'),
    });
    expect((await evaluatePolicy(fulcioPolicy(), ref('bare:1'))).reason).toContain('carries no Fulcio certificate');
  });
});

describe('sigstoreSigned with a key and a Rekor key', () => {
  const keyPolicy = (rekor: string) =>
    parsePolicy(
      JSON.stringify({
        default: [{ type: 'sigstoreSigned', keyPath: files.signingPub, rekorPublicKeyPath: rekor, signedIdentity: { type: 'matchRepository' } }],
      }),
    );

  it('accepts a keyed signature logged in Rekor, and refuses one without a log proof or logged elsewhere', async () => {
    await pushImage('keyed');
    const payload = encodeSimpleSigning(ref('keyed'), image.manifest.digest);
    const signature = nodeSign('sha256', payload, signingKey.privateKey);
    const pubPem = signingKey.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    await appendSignature(client, 'keyed', image.manifest.digest, payload, {
      [SIGNATURE_ANNOTATION]: signature.toString('base64'),
      [REKOR_BUNDLE_ANNOTATION]: rekorBundle(rekorKey, payload, signature, pubPem),
    });
    expect((await evaluatePolicy(keyPolicy(files.rekorPub), ref('keyed:1'))).allowed).toBe(true);
    expect((await evaluatePolicy(keyPolicy(files.otherRekorPub), ref('keyed:1'))).reason).toContain('does not verify with the Rekor public key');
    expect((await evaluatePolicy(keyPolicy(files.rekorPub), ref('bare:1'))).reason).toContain('carries no Rekor bundle');
    // The same policy without the Rekor key accepts the bare signature: the log proof is what it adds.
    const noRekor = parsePolicy(
      JSON.stringify({ default: [{ type: 'sigstoreSigned', keyPath: files.signingPub, signedIdentity: { type: 'matchRepository' } }] }),
    );
    expect((await evaluatePolicy(noRekor, ref('bare:1'))).allowed).toBe(true);
  });

  it('refuses a Rekor entry for another payload (the log vouches for something else)', async () => {
    await pushImage('swapped');
    const payload = encodeSimpleSigning(ref('swapped'), image.manifest.digest);
    const signature = nodeSign('sha256', payload, signingKey.privateKey);
    const pubPem = signingKey.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    await appendSignature(client, 'swapped', image.manifest.digest, payload, {
      [SIGNATURE_ANNOTATION]: signature.toString('base64'),
      [REKOR_BUNDLE_ANNOTATION]: rekorBundle(rekorKey, Buffer.from('another payload'), signature, pubPem),
    });
    expect((await evaluatePolicy(keyPolicy(files.rekorPub), ref('swapped:1'))).reason).toContain('the logged hash is not the hash of this payload');
  });
});
