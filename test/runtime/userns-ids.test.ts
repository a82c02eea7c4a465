import { describe, expect, it } from 'vitest';
import { inUserNamespace, singleIdNamespace } from '../../src/runtime/cgroups.js';
import { userName } from '../../src/runtime/idmap.js';
import { reexecCommand } from '../../src/runtime/rootless.js';
import { defaultMounts } from '../../src/runtime/spec.js';

describe("user namespaces without subordinate ids (a build Pod's uid)", () => {
  it('tells a one-id namespace from the initial one and from a full range', () => {
    expect(singleIdNamespace('         0      65532          1\n')).toBe(true);
    expect(singleIdNamespace('         0          0 4294967295\n')).toBe(false);
    expect(singleIdNamespace('0 1000 1\n1 100000 65536\n')).toBe(false);
    expect(inUserNamespace('         0      65532          1\n')).toBe(true);
  });

  it('names a uid from passwd, or by number when passwd has no entry (never throws like os.userInfo)', () => {
    const passwd = 'root:x:0:0:root:/root:/bin/sh\nbuilder:x:65532:65532::/home/builder:/bin/sh\n';
    expect(userName(65532, passwd)).toBe('builder');
    expect(userName(4242, passwd)).toBe('4242');
  });

  it('maps the caller alone when there are no subordinate ids, the whole range otherwise', () => {
    const single = reexecCommand('/node', [], ['/node', 'stevedore.js', 'build', '.'], { subordinateIds: false }).args;
    expect(single).toContain('--map-root-user');
    expect(single).not.toContain('--map-auto');
    expect(reexecCommand('/node', [], ['/node', 'stevedore.js', 'build', '.']).args).toContain('--map-auto');
  });

  it('mounts devpts without the tty group where gid 5 is not mapped', () => {
    const pts = (m: ReturnType<typeof defaultMounts>) => m.find((x) => x.destination === '/dev/pts')!.options;
    expect(pts(defaultMounts())).toContain('gid=5');
    expect(pts(defaultMounts({ ttyGroup: false }))).not.toContain('gid=5');
  });
});
