import { describe, expect, it } from 'vitest';
import { applyConfig, expandEnvValue, shellWords } from '../../src/build/working/config.js';
import type { WorkingContainer } from '../../src/build/working/records.js';
import { emptyState } from '../../src/build/executor/state.js';

function container(config: WorkingContainer['state']['config'] = {}): WorkingContainer {
  const state = { ...emptyState({ os: 'linux', architecture: 'amd64' }), config };
  return { id: 'a'.repeat(64), name: 'c', image: 'scratch', imageId: '', created: '', base: state, state, annotations: {} };
}

describe('buildah config edits', () => {
  it('splits --cmd as a shell would, keeps a JSON array, and clears on ""', () => {
    expect(applyConfig(container(), { cmd: `echo "hi there" 'a b' c\\ d` }).state.config.Cmd).toEqual(['echo', 'hi there', 'a b', 'c d']);
    expect(applyConfig(container(), { cmd: '["/bin/sh","-c","x y"]' }).state.config.Cmd).toEqual(['/bin/sh', '-c', 'x y']);
    expect(applyConfig(container({ Cmd: ['x'] }), { cmd: '' }).state.config.Cmd).toBeUndefined();
    expect(() => shellWords('echo "open')).toThrow(/unterminated/);
  });

  it('runs a non-JSON --entrypoint with /bin/sh -c and keeps the CMD', () => {
    const c = applyConfig(container({ Cmd: ['/bin/sh'] }), { entrypoint: 'exec app --flag' });
    expect(c.state.config.Entrypoint).toEqual(['/bin/sh', '-c', 'exec app --flag']);
    expect(c.state.config.Cmd).toEqual(['/bin/sh']);
  });

  it('sets, replaces and removes env, labels, ports and annotations', () => {
    const c = applyConfig(container({ Env: ['A=1', 'B=2'], Labels: { x: '1' }, ExposedPorts: { '80/tcp': {} } }), {
      env: ['B=3', 'A-', 'C=a=b'],
      label: ['x-', 'y=2'],
      port: ['80/tcp-', '8080'],
      annotation: ['k=v'],
      author: 'me',
      createdBy: 'script',
    });
    expect(c.state.config.Env).toEqual(['B=3', 'C=a=b']);
    expect(c.state.config.Labels).toEqual({ y: '2' });
    expect(c.state.config.ExposedPorts).toEqual({ '8080': {} });
    expect(c.annotations).toEqual({ k: 'v' });
    expect(c.state.author).toBe('me');
    expect(c.createdBy).toBe('script');
  });

  it('refuses malformed flags with the flag named', () => {
    expect(() => applyConfig(container(), { env: ['=x'] })).toThrow(/--env =x/);
    expect(() => applyConfig(container(), { port: ['http'] })).toThrow(/--port http/);
    expect(() => applyConfig(container(), { label: ['=v'] })).toThrow(/--label =v/);
  });

  it("expands $NAME in --env values from the container's Env as buildah 1.28 does; KEY alone takes the host's", () => {
    // Each expectation is what buildah 1.28.2 stored for the same flag (unknown names stay as the name).
    const c = applyConfig(
      container({ Env: ['PATH=/usr/bin:/bin'] }),
      { env: ['FOO', 'Q=${FOO}y', 'R=a$NOPE-b', 'PATH=/x:$PATH', 'T=$$x\\$y'] },
      { FOO: 'host' },
    );
    // A key set again moves to the end, as buildah's SetEnv does.
    expect(c.state.config.Env).toEqual(['FOO=host', 'Q=hosty', 'R=aNOPE-b', 'PATH=/x:/usr/bin:/bin', 'T=$x\\y']);
    expect(expandEnvValue('end$', [])).toBe('end$');
    expect(expandEnvValue('${}z', [])).toBe('z');
  });
});
