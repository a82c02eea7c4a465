/** PEM blocks (RFC 7468): `-----BEGIN TYPE-----`, base64 body, `-----END TYPE-----`. */
export interface PemBlock {
  type: string;
  bytes: Buffer;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;

/** Every PEM block in a text, in order; RFC 1421 headers (`Key: value` lines) are skipped. */
export function parsePemBlocks(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const body = m[2]!
      .split(/\r?\n/)
      .filter((line) => !line.includes(':'))
      .join('');
    out.push({ type: m[1]!, bytes: Buffer.from(body, 'base64') });
  }
  return out;
}

/** Encodes bytes as one PEM block with 64-character lines, as Go's encoding/pem does. */
export function encodePem(type: string, bytes: Uint8Array): string {
  const b64 = Buffer.from(bytes).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${type}-----\n${lines.join('\n')}\n-----END ${type}-----\n`;
}
