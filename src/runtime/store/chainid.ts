import { createHash } from 'node:crypto';
import type { Digest } from '../../oci/digest.js';

/**
 * Chain IDs per the OCI image spec (config.md, "Layer ChainID"): chainID(L0) = diffID(L0),
 * chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln)). One per prefix of the layer list.
 */
export function chainIds(diffIds: readonly string[]): Digest[] {
  const out: Digest[] = [];
  for (const diffId of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? (diffId as Digest) : `sha256:${createHash('sha256').update(`${prev} ${diffId}`).digest('hex')}`);
  }
  return out;
}
