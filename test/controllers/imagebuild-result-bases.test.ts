// The bases of a native multi-platform build: each platform's Pod reports the same FROM tags;
// status.baseImages lists each name once, as the first Pod reported it.
import { describe, expect, it } from 'vitest';
import { parseBuildResult, reportedBases, type BuildSuccess } from '../../src/controllers/imagebuild-result.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;

describe('reportedBases', () => {
  it("merges the Pods' reports, one entry per name, in report order", () => {
    const amd = parseBuildResult(
      JSON.stringify({
        digest: D('1'),
        baseImages: [
          { name: 'r.example/base:1', digest: D('a') },
          { name: 'r.example/tool:2', digest: D('b') },
        ],
      }),
    ) as BuildSuccess;
    const arm = parseBuildResult(
      JSON.stringify({
        digest: D('2'),
        baseImages: [
          { name: 'r.example/tool:2', digest: D('b') },
          { name: 'r.example/arm-only:1', digest: D('c') },
        ],
      }),
    ) as BuildSuccess;
    const none = parseBuildResult(JSON.stringify({ digest: D('3') })) as BuildSuccess;
    expect(reportedBases([amd, arm, none])).toEqual([
      { name: 'r.example/base:1', digest: D('a') },
      { name: 'r.example/tool:2', digest: D('b') },
      { name: 'r.example/arm-only:1', digest: D('c') },
    ]);
    expect(reportedBases([none])).toEqual([]);
  });
});
