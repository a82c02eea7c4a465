/**
 * The registry layer cache of an ImageBuild: `spec.cache` names a repository that every build Pod
 * reads before building and writes after (`--cache-from`, `--cache-to`), so a fresh Pod, whose
 * layer store is an empty emptyDir, reuses the steps earlier builds ran. Without a repository in
 * the spec: the administrator's template (`buildPods.cacheRepository`, with `{namespace}` and
 * `{name}`), else the output repository followed by `/cache`.
 */
import type { ImageBuild } from '../k8s/api/imagebuild.js';
import { parseReference, referenceName } from '../oci/reference.js';

/** The cache repository of the build, or undefined when `spec.cache` is not set. */
export function cacheRepository(ib: ImageBuild, template?: string): string | undefined {
  const spec = ib.spec;
  if (!spec.cache) return undefined;
  if (spec.cache.repository) return spec.cache.repository;
  if (template) {
    // Namespace and name are DNS labels/subdomains: valid repository path components as they are.
    const repo = template.replaceAll('{namespace}', ib.metadata.namespace ?? 'default').replaceAll('{name}', ib.metadata.name ?? '');
    return referenceName(parseReference(repo));
  }
  return `${referenceName(parseReference(spec.output.image))}/cache`;
}

/** The builder flags that read and write the cache. */
export function cacheArgs(ib: ImageBuild, template?: string): string[] {
  const repo = cacheRepository(ib, template);
  return repo ? ['--cache-from', repo, '--cache-to', repo] : [];
}
