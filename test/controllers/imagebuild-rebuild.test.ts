/** The base images an ImageBuild watches: read from an inline Containerfile, or from what the build Pod reports (pure logic). */
import { describe, expect, it } from 'vitest';
import { knownBaseNames } from '../../src/controllers/imagebuild-bases.js';
import { parseBuildResult } from '../../src/controllers/imagebuild-result.js';
import type { ImageBuild } from '../../src/k8s/api/imagebuild.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const spec = (containerfile: string, extra: Partial<ImageBuild['spec']> = {}): ImageBuild['spec'] => ({
  source: { inline: { containerfile } },
  output: { image: 'r.example/a:1' },
  ...extra,
});

describe('knownBaseNames', () => {
  it('lists the FROM images of the stages the target needs, build args applied, stages and scratch left out', () => {
    const cf =
      'ARG V=1\nFROM r.example/golang:$V AS build\nFROM scratch AS empty\nFROM build AS test\nFROM r.example/unused:1 AS other\nFROM r.example/runtime:2\nCOPY --from=test / /\n';
    expect(knownBaseNames(spec(cf))).toEqual(['r.example/golang:1', 'r.example/runtime:2']);
    expect(knownBaseNames(spec(cf, { buildArgs: [{ name: 'V', value: '2' }] }))).toEqual(['r.example/golang:2', 'r.example/runtime:2']);
    expect(knownBaseNames(spec(cf, { target: 'other' }))).toEqual(['r.example/unused:1']);
  });
  it('knows nothing of a Git or artifact source (the build Pod reports those)', () => {
    expect(knownBaseNames({ source: { git: { url: 'https://g.example/a.git' } }, output: { image: 'r.example/a:1' } })).toBeUndefined();
  });
  it('refuses an invalid inline Containerfile with its file and line', () => {
    expect(() => knownBaseNames(spec('FROM a\nFROM b AS x\nFROM c AS x\n'))).toThrow(/spec\.source\.inline\.containerfile.*3|duplicate stage name/);
  });
});

describe('parseBuildResult: baseImages from the build Pod (a trust boundary)', () => {
  it('keeps well-formed entries and drops the rest', () => {
    const doc = {
      image: 'r.example/a:1',
      digest: D('a'),
      baseImages: [
        { name: 'r.example/base:1', digest: D('b') },
        { name: 'r.example/bad:1', digest: 'sha256:short' },
        { name: '', digest: D('c') },
        { name: 'x'.repeat(513), digest: D('c') },
        'not an object',
        null,
      ],
    };
    expect(parseBuildResult(JSON.stringify(doc))).toMatchObject({ baseImages: [{ name: 'r.example/base:1', digest: D('b') }] });
  });
  it('keeps at most 32', () => {
    const many = Array.from({ length: 100 }, (_, i) => ({ name: `r.example/b${i}:1`, digest: D('d') }));
    const r = parseBuildResult(JSON.stringify({ digest: D('a'), baseImages: many }));
    expect(r && 'baseImages' in r ? r.baseImages?.length : undefined).toBe(32);
  });
});
