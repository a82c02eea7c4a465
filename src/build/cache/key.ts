import { createHash } from 'node:crypto';

/**
 * A cache key: sha256 over the parent filesystem (its chain ID, or `scratch`), the step's kind and
 * the inputs that decide its result. Parts are JSON-encoded so no two different inputs can join to
 * the same text.
 */
export function cacheKey(parent: string, kind: string, inputs: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify(['stevedore-build-cache/v1', parent, kind, inputs]))
    .digest('hex');
}
