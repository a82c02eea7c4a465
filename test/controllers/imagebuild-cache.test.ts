/** Which cache repository a build Pod reads and writes (pure logic): the spec's, the administrator's template, or <output>/cache. */
import { describe, expect, it } from 'vitest';
import { cacheRepository } from '../../src/controllers/imagebuild-cache.js';
import { buildPod, type BuildPodOptions } from '../../src/controllers/imagebuild-pod.js';
import { API_VERSION } from '../../src/k8s/api/common.js';
import type { ImageBuild } from '../../src/k8s/api/imagebuild.js';

const OPTS: BuildPodOptions = { image: 'stevedore:1', userNamespaces: true, runAsUser: 65532 };
const ib = (cache: ImageBuild['spec']['cache']): ImageBuild => ({
  apiVersion: API_VERSION,
  kind: 'ImageBuild',
  metadata: { name: 'app', namespace: 'team-a', uid: 'u1', generation: 1 },
  spec: { source: { inline: { containerfile: 'FROM scratch\n' } }, output: { image: 'registry.example/team/app:1.2' }, ...(cache ? { cache } : {}) },
});
const cacheFlags = (pod: ReturnType<typeof buildPod>) => {
  const args = pod.spec!.containers[0]!.args!;
  const i = args.indexOf('--cache-from');
  return i < 0 ? [] : args.slice(i, i + 4);
};

describe('the build cache repository', () => {
  it('no spec.cache: no cache flags', () => {
    expect(cacheRepository(ib(undefined))).toBeUndefined();
    expect(cacheFlags(buildPod(ib(undefined), OPTS))).toEqual([]);
  });
  it('cache: {} uses <output repository>/cache', () => {
    expect(cacheFlags(buildPod(ib({}), OPTS))).toEqual(['--cache-from', 'registry.example/team/app/cache', '--cache-to', 'registry.example/team/app/cache']);
  });
  it("cache: {} with the administrator's template uses it, per namespace and name", () => {
    const o = { ...OPTS, cacheRepository: 'cache.example/builds/{namespace}/{name}' };
    expect(cacheFlags(buildPod(ib({}), o))).toEqual(['--cache-from', 'cache.example/builds/team-a/app', '--cache-to', 'cache.example/builds/team-a/app']);
  });
  it('a repository in the spec wins over both', () => {
    expect(cacheRepository(ib({ repository: 'registry.example/ci/app-cache' }), 'cache.example/{namespace}')).toBe('registry.example/ci/app-cache');
  });
});
