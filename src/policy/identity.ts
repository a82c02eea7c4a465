import { formatReference, parseReference, referenceName, type ImageReference } from '../oci/reference.js';
import type { SignedIdentity } from './types.js';

function tryParse(s: string): ImageReference | undefined {
  try {
    return parseReference(s);
  } catch {
    return undefined;
  }
}

const isNameOnly = (r: ImageReference) => !r.tag && !r.digest;

/**
 * matchRepoDigestOrExact on parsed values: an image pulled by digest needs only the repository to
 * match (the digest itself is checked against the signed payload separately); one pulled by tag
 * needs the very same tagged reference; a signature claiming a bare repository matches neither.
 */
function repoDigestOrExact(intended: ImageReference, signed: ImageReference): boolean {
  if (isNameOnly(signed)) return false;
  if (intended.tag) return formatReference(signed) === formatReference(intended);
  if (intended.digest) return referenceName(signed) === referenceName(intended);
  return false;
}

/** Whether a prefix (host, host/namespace, or repository) covers a name, on `/` boundaries only. */
function matchesPrefix(name: string, prefix: string): boolean {
  if (name.length < prefix.length) return false;
  if (name.length === prefix.length) return name === prefix;
  return name.startsWith(prefix) && name[prefix.length] === '/';
}

/**
 * Whether the identity a signature claims (`signedReference`, its docker-reference) is acceptable
 * for the image being checked (`intended`, the reference it is pulled by), per containers/image's
 * signedIdentity semantics. Unparseable references never match.
 */
export function identityMatches(rule: SignedIdentity, intended: ImageReference | undefined, signedReference: string): boolean {
  const signed = tryParse(signedReference);
  if (!signed) return false;
  // Rules that compare with the image's own name cannot accept an image that has none (dir:, oci:).
  if (!intended && rule.type !== 'exactReference' && rule.type !== 'exactRepository') return false;
  switch (rule.type) {
    case 'matchExact':
      if (isNameOnly(intended!) || isNameOnly(signed)) return false;
      return formatReference(signed) === formatReference(intended!);
    case 'matchRepoDigestOrExact':
      return repoDigestOrExact(intended!, signed);
    case 'matchRepository':
      return referenceName(signed) === referenceName(intended!);
    case 'exactReference': {
      const want = tryParse(rule.dockerReference);
      if (!want || isNameOnly(want) || isNameOnly(signed)) return false;
      return formatReference(signed) === formatReference(want);
    }
    case 'exactRepository': {
      const want = tryParse(rule.dockerRepository);
      return want !== undefined && referenceName(signed) === referenceName(want);
    }
    case 'remapIdentity': {
      let remapped = intended!;
      if (matchesPrefix(referenceName(remapped), rule.prefix)) {
        const rewritten = tryParse(formatReference(remapped).replace(rule.prefix, rule.signedPrefix));
        if (!rewritten) return false;
        remapped = rewritten;
      }
      return repoDigestOrExact(remapped, signed);
    }
  }
}
