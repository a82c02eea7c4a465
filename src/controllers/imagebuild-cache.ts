/**
 * The registry layer cache of an ImageBuild: `spec.cache` names a repository (default: the output
 * repository followed by `/cache`) that every build Pod reads before building and writes after
 * (`--cache-from`, `--cache-to`), so a fresh Pod, whose layer store is an empty emptyDir, reuses the
 * steps earlier builds ran.
 */
import type { ImageBuild } from '../k8s/api/imagebuild.js';
import { parseReference, referenceName } from '../oci/reference.js';

/** The cache repository of the build, or undefined when `spec.cache` is not set. */
export function cacheRepository(spec: ImageBuild['spec']): string | undefined {
  if (!spec.cache) return undefined;
  if (spec.cache.repository) return spec.cache.repository;
  return `${referenceName(parseReference(spec.output.image))}/cache`;
}

/** The builder flags that read and write the cache. */
export function cacheArgs(spec: ImageBuild['spec']): string[] {
  const repo = cacheRepository(spec);
  return repo ? ['--cache-from', repo, '--cache-to', repo] : [];
}
