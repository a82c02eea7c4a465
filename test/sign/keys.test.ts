import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signData, verifyData } from '../../src/sign/crypto.js';
import { KeyError } from '../../src/sign/errors.js';
import { encryptPrivateKey, generateKeyPair, loadPrivateKey, loadPublicKey } from '../../src/sign/keys.js';
import { encodePem, parsePemBlocks } from '../../src/sign/pem.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { cosign } from './cosign.js';

const temps = new TempDirs();
let dir: string;

beforeAll(async () => {
  dir = await temps.make('sign-keys');
});
afterAll(() => temps.cleanup());

async function expectKeyError(p: Promise<unknown>, text: RegExp): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KeyError);
  expect((err as Error).message).toMatch(text);
}

describe('stevedore key pairs', () => {
  it('generates an encrypted SIGSTORE private key and an SPKI public key that sign and verify', async () => {
    const { privatePem, publicPem } = generateKeyPair('s3cret');
    expect(parsePemBlocks(privatePem)[0]!.type).toBe('ENCRYPTED SIGSTORE PRIVATE KEY');
    expect(parsePemBlocks(publicPem)[0]!.type).toBe('PUBLIC KEY');
    const body = JSON.parse(parsePemBlocks(privatePem)[0]!.bytes.toString()) as { kdf: { params: unknown }; cipher: { name: string } };
    expect(body.kdf.params).toEqual({ N: 65536, r: 8, p: 1 });
    expect(body.cipher.name).toBe('nacl/secretbox');
    const priv = await loadPrivateKey(privatePem, 's3cret');
    const pub = await loadPublicKey(publicPem);
    expect(priv.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const sig = signData(priv, Buffer.from('payload'));
    expect(verifyData(pub, Buffer.from('payload'), sig)).toBe(true);
    expect(verifyData(pub, Buffer.from('payloaD'), sig)).toBe(false);
  });

  it('refuses a wrong password, saying so', async () => {
    const { privatePem } = generateKeyPair('right');
    await expectKeyError(loadPrivateKey(privatePem, 'wrong'), /wrong password/);
  });

  it('takes the password from COSIGN_PASSWORD, where an empty value is a valid password', async () => {
    const { privatePem } = generateKeyPair('');
    const saved = process.env.COSIGN_PASSWORD;
    process.env.COSIGN_PASSWORD = '';
    try {
      const key = await loadPrivateKey(privatePem);
      expect(key.type).toBe('private');
    } finally {
      if (saved === undefined) delete process.env.COSIGN_PASSWORD;
      else process.env.COSIGN_PASSWORD = saved;
    }
  });

  it('refuses tampered scrypt parameters before spending memory on them, and a tampered ciphertext', async () => {
    const { privatePem } = generateKeyPair('pw');
    const block = parsePemBlocks(privatePem)[0]!;
    const doc = JSON.parse(block.bytes.toString()) as { kdf: { params: { N: number } }; ciphertext: string };
    const huge = { ...doc, kdf: { ...doc.kdf, params: { ...doc.kdf.params, N: 1 << 24 } } };
    await expectKeyError(loadPrivateKey(encodePem(block.type, Buffer.from(JSON.stringify(huge))), 'pw'), /unsupported scrypt parameters/);
    const ct = Buffer.from(doc.ciphertext, 'base64');
    ct[20] = ct[20]! ^ 0xff;
    const flipped = { ...doc, ciphertext: ct.toString('base64') };
    await expectKeyError(loadPrivateKey(encodePem(block.type, Buffer.from(JSON.stringify(flipped))), 'pw'), /decryption failed/);
    await expectKeyError(loadPrivateKey(encodePem(block.type, Buffer.from('not json')), 'pw'), /not the JSON document/);
  });

  it('accepts the pre-2.0 "ENCRYPTED COSIGN PRIVATE KEY" label', async () => {
    const { privatePem } = generateKeyPair('pw');
    const relabelled = privatePem.replaceAll('ENCRYPTED SIGSTORE PRIVATE KEY', 'ENCRYPTED COSIGN PRIVATE KEY');
    expect((await loadPrivateKey(relabelled, 'pw')).type).toBe('private');
  });

  it('loads plain PKCS#8 and SEC1 private keys and SPKI public keys from files', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pkcs8 = join(dir, 'plain.key');
    const sec1 = join(dir, 'sec1.key');
    const spki = join(dir, 'plain.pub');
    await writeFile(pkcs8, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await writeFile(sec1, privateKey.export({ type: 'sec1', format: 'pem' }));
    await writeFile(spki, publicKey.export({ type: 'spki', format: 'pem' }));
    const pub = await loadPublicKey(spki);
    for (const path of [pkcs8, sec1]) {
      const priv = await loadPrivateKey(path);
      expect(verifyData(pub, Buffer.from('x'), signData(priv, Buffer.from('x')))).toBe(true);
    }
    // The public half of a plain private key also serves for verification.
    expect(verifyData(await loadPublicKey(pkcs8), Buffer.from('x'), signData(privateKey, Buffer.from('x')))).toBe(true);
  });

  it('says what is wrong with a key given in the wrong place or not a key at all', async () => {
    const { privatePem, publicPem } = generateKeyPair('pw');
    await expectKeyError(loadPrivateKey(publicPem, 'pw'), /is a public key; signing needs the private key/);
    await expectKeyError(loadPublicKey(privatePem), /encrypted private key; verification needs the public key/);
    const garbage = join(dir, 'garbage.pem');
    await writeFile(garbage, 'hello\n');
    await expectKeyError(loadPublicKey(garbage), /no PEM block found/);
    await expectKeyError(loadPublicKey(join(dir, 'missing.pub')), /cannot read key file/);
    const ed = generateKeyPairSync('ed25519');
    await expectKeyError(loadPublicKey(ed.publicKey.export({ type: 'spki', format: 'pem' }).toString()), /unsupported key type "ed25519"/);
  });
});

describe('key interoperability with the real cosign', () => {
  it('loads a key pair made by `cosign generate-key-pair` and verifies what cosign sign-blob signed with it', async () => {
    const prefix = join(dir, 'from-cosign');
    const gen = await cosign(['generate-key-pair', '--output-key-prefix', prefix], { password: 'cosign-pw' });
    expect(gen.code, gen.stderr).toBe(0);
    const blob = join(dir, 'blob.txt');
    await writeFile(blob, 'hello from cosign\n');
    const signed = await cosign(['sign-blob', '--key', `${prefix}.key`, '--tlog-upload=false', '--yes', blob], { password: 'cosign-pw' });
    expect(signed.code, signed.stderr).toBe(0);
    const priv = await loadPrivateKey(`${prefix}.key`, 'cosign-pw');
    const pub = await loadPublicKey(`${prefix}.pub`);
    expect(verifyData(pub, await readFile(blob), Buffer.from(signed.stdout.trim(), 'base64'))).toBe(true);
    // And our signature with cosign's key verifies under cosign.
    const ours = join(dir, 'blob.sig');
    await writeFile(ours, signData(priv, await readFile(blob)).toString('base64'));
    const v = await cosign(['verify-blob', '--key', `${prefix}.pub`, '--signature', ours, '--insecure-ignore-tlog', blob]);
    expect(v.code, v.stderr).toBe(0);
  });

  it('cosign signs with a key pair stevedore generated (encrypted under a password) and with a re-encrypted plain key', async () => {
    const { privatePem, publicPem } = generateKeyPair('ours-pw');
    await writeFile(join(dir, 'ours.key'), privatePem);
    await writeFile(join(dir, 'ours.pub'), publicPem);
    const blob = join(dir, 'blob2.txt');
    await writeFile(blob, 'hello from stevedore\n');
    const signed = await cosign(['sign-blob', '--key', join(dir, 'ours.key'), '--tlog-upload=false', '--yes', blob], { password: 'ours-pw' });
    expect(signed.code, signed.stderr).toBe(0);
    expect(verifyData(await loadPublicKey(publicPem), await readFile(blob), Buffer.from(signed.stdout.trim(), 'base64'))).toBe(true);
    // A wrong password is refused by cosign too: the encryption is the real thing, not a look-alike.
    const refused = await cosign(['sign-blob', '--key', join(dir, 'ours.key'), '--tlog-upload=false', '--yes', blob], { password: 'nope' });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/decrypt/);
    // A plain PKCS#8 key, encrypted by encryptPrivateKey, is usable by cosign as well.
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await writeFile(join(dir, 'plain-enc.key'), encryptPrivateKey(privateKey, 'p2'));
    const signed2 = await cosign(['sign-blob', '--key', join(dir, 'plain-enc.key'), '--tlog-upload=false', '--yes', blob], { password: 'p2' });
    expect(signed2.code, signed2.stderr).toBe(0);
  });
});
