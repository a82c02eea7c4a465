import { randomBytes, scrypt as scryptCb, scryptSync } from 'node:crypto';
import { promisify } from 'node:util';
import nacl from 'tweetnacl';
import { KeyError } from './errors.js';

/**
 * The body of cosign's `ENCRYPTED SIGSTORE PRIVATE KEY` PEM (go-securesystemslib's `encrypted`
 * format): JSON naming the KDF (scrypt, its parameters and a 32-byte salt), the cipher (NaCl
 * secretbox, a 24-byte nonce) and the ciphertext; byte fields are standard base64, as Go's JSON
 * encodes []byte. The plaintext is the PKCS#8 DER of the private key.
 */
interface EncryptedKeyDoc {
  kdf: { name: string; params: { N: number; r: number; p: number }; salt: string };
  cipher: { name: string; nonce: string };
  ciphertext: string;
}

type ScryptParams = { N: number; r: number; p: number };

/**
 * The only parameter sets accepted on decryption (legacy, standard, OWASP), as securesystemslib:
 * a tampered file must not be able to make us spend gigabytes of memory on scrypt.
 */
const ALLOWED_PARAMS: readonly ScryptParams[] = [
  { N: 32768, r: 8, p: 1 },
  { N: 65536, r: 8, p: 1 },
  { N: 131072, r: 8, p: 1 },
];
/** What cosign writes today (securesystemslib's "Standard"). */
const STANDARD: ScryptParams = { N: 65536, r: 8, p: 1 };
const KEY_BYTES = 32;
const SALT_BYTES = 32;
const NONCE_BYTES = 24;

const scryptAsync = promisify(scryptCb) as (
  password: string,
  salt: Buffer,
  keylen: number,
  opts: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>;

function maxmem(p: ScryptParams): number {
  // scrypt needs 128 * N * r bytes (plus a little); Node's default cap of 32 MiB is below N=2^16.
  return 256 * p.N * p.r;
}

/** Encrypts PKCS#8 DER with a password into the JSON body cosign reads. Synchronous: ~0.2 s of scrypt. */
export function encryptKeyBytes(pkcs8: Uint8Array, password: string): Buffer {
  const salt = randomBytes(SALT_BYTES);
  const nonce = randomBytes(NONCE_BYTES);
  const key = scryptSync(password, salt, KEY_BYTES, { ...STANDARD, maxmem: maxmem(STANDARD) });
  const box = nacl.secretbox(new Uint8Array(pkcs8), new Uint8Array(nonce), new Uint8Array(key));
  const doc: EncryptedKeyDoc = {
    kdf: { name: 'scrypt', params: STANDARD, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: Buffer.from(box).toString('base64'),
  };
  return Buffer.from(JSON.stringify(doc));
}

/** A byte field of the key document: base64 text (as Go encodes []byte), or a KeyError naming the field. */
function base64Field(value: unknown, field: string, what: string): Buffer {
  if (value === undefined || value === null) return Buffer.alloc(0);
  if (typeof value !== 'string')
    throw new KeyError(`${what}: the encrypted key's ${field} must be base64 text, not ${Array.isArray(value) ? 'an array' : typeof value}`);
  return Buffer.from(value, 'base64');
}

/** Decrypts the JSON body of an encrypted cosign key; a wrong password is a KeyError saying so. */
export async function decryptKeyBytes(body: Uint8Array, password: string, what: string): Promise<Buffer> {
  let doc: EncryptedKeyDoc;
  try {
    doc = JSON.parse(Buffer.from(body).toString('utf8')) as EncryptedKeyDoc;
  } catch {
    throw new KeyError(`${what}: the encrypted key is not the JSON document cosign writes`);
  }
  if (doc?.kdf?.name !== 'scrypt') throw new KeyError(`${what}: unsupported key derivation "${String(doc?.kdf?.name)}" (expected scrypt)`);
  if (doc.cipher?.name !== 'nacl/secretbox') throw new KeyError(`${what}: unsupported cipher "${String(doc.cipher?.name)}" (expected nacl/secretbox)`);
  const params = doc.kdf.params;
  if (!ALLOWED_PARAMS.some((a) => a.N === params?.N && a.r === params?.r && a.p === params?.p)) {
    throw new KeyError(`${what}: unsupported scrypt parameters ${JSON.stringify(params)}`);
  }
  const salt = base64Field(doc.kdf.salt, 'kdf.salt', what);
  const nonce = base64Field(doc.cipher.nonce, 'cipher.nonce', what);
  const ciphertext = base64Field(doc.ciphertext, 'ciphertext', what);
  if (nonce.length !== NONCE_BYTES) throw new KeyError(`${what}: the secretbox nonce must be ${NONCE_BYTES} bytes, got ${nonce.length}`);
  const key = await scryptAsync(password, salt, KEY_BYTES, { N: params.N, r: params.r, p: params.p, maxmem: maxmem(params) });
  const plain = nacl.secretbox.open(new Uint8Array(ciphertext), new Uint8Array(nonce), new Uint8Array(key));
  if (!plain) throw new KeyError(`${what}: wrong password (or a corrupted key): decryption failed`);
  return Buffer.from(plain);
}
