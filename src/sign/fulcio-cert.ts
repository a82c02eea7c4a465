import { createPublicKey, type KeyObject } from 'node:crypto';
import { ASN1Obj, X509Certificate } from '@sigstore/core';
import { SignatureError } from './errors.js';
import { encodePem, parsePemBlocks } from './pem.js';

/** Fulcio's OIDC issuer extensions: v1 holds the raw string, v2 a DER UTF8String. */
const OID_ISSUER_V1 = '1.3.6.1.4.1.57264.1.1';
const OID_ISSUER_V2 = '1.3.6.1.4.1.57264.1.8';
const MAX_CHAIN = 5;

const refused = (msg: string) => new SignatureError('SIGNATURE_INVALID', `Fulcio certificate: ${msg}`);

function certs(pem: string | undefined): X509Certificate[] {
  if (!pem) return [];
  return parsePemBlocks(pem)
    .filter((b) => b.type === 'CERTIFICATE')
    .map((b) => X509Certificate.parse(encodePem('CERTIFICATE', b.bytes)));
}

function issuerOf(cert: X509Certificate): string | undefined {
  const v1 = cert.extension(OID_ISSUER_V1)?.value.toString('utf8');
  let v2: string | undefined;
  const ext2 = cert.extension(OID_ISSUER_V2);
  if (ext2) {
    try {
      v2 = ASN1Obj.parseBuffer(Buffer.from(ext2.value)).value.toString('utf8');
    } catch {
      throw refused('malformed OIDC issuer extension (v2)');
    }
  }
  if (v1 !== undefined && v2 !== undefined && v1 !== v2) throw refused(`conflicting OIDC issuer extensions "${v1}" and "${v2}"`);
  return v2 ?? v1;
}

/**
 * Checks a Fulcio-issued signing certificate as containers/image's sigstoreSigned `fulcio` does: it
 * chains (through the signature's own intermediates, which are not trusted by themselves) to one of
 * the trusted CA certificates, every certificate on the way was valid at `at` (the Rekor
 * integration time, since Fulcio certificates live minutes), its OIDC issuer extension is
 * `oidcIssuer`, and its e-mail SAN is `subjectEmail`. Returns the certificate's public key.
 */
export function verifyFulcioCertificate(
  certPem: string,
  chainPem: string | undefined,
  caPem: string,
  at: Date,
  want: { oidcIssuer: string; subjectEmail: string },
): KeyObject {
  let leaf: X509Certificate;
  try {
    [leaf] = certs(certPem) as [X509Certificate];
  } catch (err) {
    throw refused(`not a certificate: ${(err as Error).message}`);
  }
  if (!leaf) throw refused('no certificate in the signature');
  const roots = certs(caPem);
  if (roots.length === 0) throw refused('the policy names no CA certificate');
  const intermediates = certs(chainPem).filter((c) => !roots.some((r) => r.equals(c)));
  if (!leaf.validForDate(at)) throw refused(`not valid at ${at.toISOString()} (valid ${leaf.notBefore.toISOString()} to ${leaf.notAfter.toISOString()})`);
  let cur = leaf;
  let trusted = false;
  for (let depth = 0; depth < MAX_CHAIN && !trusted; depth++) {
    const root = roots.find((r) => r.validForDate(at) && cur.verify(r));
    if (root) {
      trusted = true;
      break;
    }
    const next = intermediates.find((c) => c.isCA && c.validForDate(at) && cur.verify(c));
    if (!next) break;
    cur = next;
  }
  if (!trusted) throw refused('does not chain to a trusted CA (at the time the signature was logged)');
  const issuer = issuerOf(leaf);
  if (issuer !== want.oidcIssuer) throw refused(`OIDC issuer is ${issuer === undefined ? 'missing' : `"${issuer}"`}, not "${want.oidcIssuer}"`);
  const email = leaf.extSubjectAltName?.rfc822Name;
  if (email !== want.subjectEmail) throw refused(`required e-mail "${want.subjectEmail}" not found (got ${email === undefined ? 'none' : `"${email}"`})`);
  return createPublicKey({ key: leaf.publicKey, format: 'der', type: 'spki' });
}
