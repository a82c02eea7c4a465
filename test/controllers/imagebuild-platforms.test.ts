/** Which nodes a native multi-platform build may use, and the names and tags of its per-platform Pods (pure logic). */
import type { V1Node, V1Taint } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { ImageBuild } from '../../src/k8s/api/imagebuild.js';
import { planPlatforms, platformImage, platformPodName } from '../../src/controllers/imagebuild-platforms.js';

const node = (
  name: string,
  arch: string,
  o: { ready?: boolean; unschedulable?: boolean; taints?: V1Taint[]; labels?: Record<string, string> } = {},
): V1Node => ({
  metadata: { name, labels: { 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': arch, ...(o.labels ?? {}) } },
  spec: { ...(o.unschedulable ? { unschedulable: true } : {}), ...(o.taints ? { taints: o.taints } : {}) },
  status: { conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] },
});
const spec = (extra: Partial<ImageBuild['spec']> = {}): ImageBuild['spec'] => ({
  source: { inline: { containerfile: 'FROM scratch\n' } },
  output: { image: 'registry.example/team/app:1.2' },
  platforms: ['linux/amd64', 'linux/arm64'],
  ...extra,
});

describe('planPlatforms', () => {
  const both = [node('a', 'amd64'), node('b', 'arm64')];
  it('fans out when every platform has a Ready, schedulable node', () => {
    expect(planPlatforms(spec(), both)).toEqual({ mode: 'native' });
  });
  it('builds in one Pod for a single platform, or when nodes cannot be listed', () => {
    expect(planPlatforms(spec({ platforms: ['linux/arm64'] }), both)).toEqual({ mode: 'single', why: '' });
    expect(planPlatforms(spec(), undefined)).toEqual({ mode: 'single', why: 'the nodes could not be listed' });
  });
  it('does not count NotReady, cordoned, or tainted-without-toleration nodes', () => {
    for (const arm of [
      node('b', 'arm64', { ready: false }),
      node('b', 'arm64', { unschedulable: true }),
      node('b', 'arm64', { taints: [{ key: 'k', effect: 'NoSchedule' }] }),
    ]) {
      expect(planPlatforms(spec(), [node('a', 'amd64'), arm])).toEqual({ mode: 'single', why: 'no Ready node for linux/arm64' });
    }
    const tainted = [node('a', 'amd64'), node('b', 'arm64', { taints: [{ key: 'k', value: 'v', effect: 'NoSchedule' }] })];
    expect(planPlatforms(spec({ tolerations: [{ key: 'k', operator: 'Equal', value: 'v', effect: 'NoSchedule' }] }), tainted)).toEqual({ mode: 'native' });
    expect(planPlatforms(spec({ tolerations: [{ key: 'k', operator: 'Equal', value: 'other' }] }), tainted).mode).toBe('single');
  });
  it('only counts nodes the spec.nodeSelector allows', () => {
    const nodes = [node('a', 'amd64', { labels: { pool: 'build' } }), node('b', 'arm64')];
    expect(planPlatforms(spec({ nodeSelector: { pool: 'build' } }), nodes)).toEqual({ mode: 'single', why: 'no Ready node for linux/arm64' });
  });
  it('keeps a signed build in one Pod: the index is signed as a whole', () => {
    expect(planPlatforms(spec({ signing: { secretRef: { name: 'k' } } }), both).mode).toBe('single');
  });
});

describe('per-platform names', () => {
  it('tags each platform image <tag>-<os>-<arch>[-<variant>] in the output repository', () => {
    expect(platformImage('registry.example/team/app:1.2', 'linux/arm/v7')).toBe('registry.example/team/app:1.2-linux-arm-v7');
    expect(platformImage('registry.example/team/app', 'linux/amd64')).toBe('registry.example/team/app:latest-linux-amd64');
    const long = platformImage(`registry.example/team/app:${'t'.repeat(128)}`, 'linux/arm64');
    expect(long.split(':')[1]).toMatch(/^[0-9a-f]{16}-linux-arm64$/);
  });
  it('names each platform Pod <build Pod>-<os>-<arch>, within 63 characters', () => {
    expect(platformPodName('app-build-3', 'linux/arm64')).toBe('app-build-3-linux-arm64');
    expect(platformPodName('app-build-3', 'linux/x86_64')).toBe('app-build-3-linux-x86-64');
    const long = platformPodName(`${'a'.repeat(50)}-build-3`, 'linux/arm/v7');
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).toMatch(/-[0-9a-f]{8}-linux-arm-v7$/);
    expect(long).not.toBe(platformPodName(`${'a'.repeat(50)}-build-4`, 'linux/arm/v7'));
  });
});
