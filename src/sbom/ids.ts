import { createHash } from 'node:crypto';

/**
 * A UUID (version 5 layout, SHA-256 based rather than SHA-1) derived from a name, so the same image
 * and format give the same document identifiers: SBOMs of a reproducible build are reproducible.
 */
export function uuidFrom(name: string): string {
  const h = createHash('sha256').update(name).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** A short stable hash for identifiers that must be unique within one document. */
export function shortHash(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 16);
}
