import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ignoreFromLines, loadIgnore } from '../../src/build/context/ignore.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';

const tmp = new TempDirs();
afterAll(() => tmp.cleanup());

function m(...lines: string[]): (p: string) => boolean {
  const matcher = ignoreFromLines(lines, 'test');
  return (p) => matcher.ignored(p, false);
}

describe('.dockerignore pattern semantics', () => {
  it('single-level wildcards never cross a slash (the documented */temp* and temp? examples)', () => {
    const one = m('*/temp*');
    expect(one('somedir/temporary.txt')).toBe(true);
    expect(one('somedir/temp')).toBe(true);
    expect(one('temp')).toBe(false);
    expect(one('a/b/temp')).toBe(false);
    const two = m('*/*/temp*');
    expect(two('a/b/temporary')).toBe(true);
    expect(two('a/temporary')).toBe(false);
    const q = m('temp?');
    expect(q('tempa')).toBe(true);
    expect(q('temp')).toBe(false);
    expect(q('tempab')).toBe(false);
  });

  it('** matches any number of directories, zero included', () => {
    const go = m('**/*.go');
    expect(go('main.go')).toBe(true);
    expect(go('a/b/c/x.go')).toBe(true);
    expect(go('a/b/c/x.gox')).toBe(false);
    const mid = m('a/**/z');
    expect(mid('a/z')).toBe(true);
    expect(mid('a/b/c/z')).toBe(true);
    expect(mid('b/z')).toBe(false);
  });

  it('a pattern that matches a directory hides everything below it', () => {
    const f = m('node_modules', '/build');
    expect(f('node_modules/x/index.js')).toBe(true);
    expect(f('build/out.o')).toBe(true);
    expect(f('src/build/out.o')).toBe(false);
    expect(f('node_modules2')).toBe(false);
  });

  it('! exceptions re-include and the last matching line wins', () => {
    const f = m('*.md', '!README*.md', 'README-secret.md');
    expect(f('CHANGES.md')).toBe(true);
    expect(f('README.md')).toBe(false);
    expect(f('README-secret.md')).toBe(true);
    const g = m('*', '!keep', '!src/**/*.ts');
    expect(g('anything')).toBe(true);
    expect(g('keep')).toBe(false);
    expect(g('src/a/b.ts')).toBe(false);
    expect(g('src/a/b.js')).toBe(true);
    expect(ignoreFromLines(['*', '!keep'], 't').hasExceptions).toBe(true);
    expect(ignoreFromLines(['*'], 't').hasExceptions).toBe(false);
  });

  it('comments, blanks, surrounding spaces, cleaning, classes and escapes', () => {
    const f = m('# a comment', '', '   spaced.txt   ', './x/../y', '[a-c].log', '[!a]z', 'lit\\*eral', '\uFEFFnot-first-line');
    expect(f('# a comment')).toBe(false);
    expect(f('spaced.txt')).toBe(true);
    expect(f('y')).toBe(true);
    expect(f('x')).toBe(false);
    expect(f('b.log')).toBe(true);
    expect(f('d.log')).toBe(false);
    expect(f('bz')).toBe(true);
    expect(f('az')).toBe(false);
    expect(f('lit*eral')).toBe(true);
    expect(f('litXeral')).toBe(false);
    expect(m('\uFEFFbom')('bom')).toBe(true);
    expect(() => m('broken[')).toThrow(/test:1: pattern "broken\[" has an unclosed "\["/);
  });

  it('never ignores the context root itself', () => {
    expect(m('*')('')).toBe(false);
    expect(m('**')('.')).toBe(false);
  });
});

describe('loadIgnore precedence', () => {
  it('prefers <Containerfile>.containerignore, then .containerignore, then .dockerignore', async () => {
    const ctx = await tmp.make('ign-ctx');
    const other = await tmp.make('ign-cf');
    await writeFile(join(ctx, '.dockerignore'), 'from-dockerignore\n');
    expect((await loadIgnore(ctx)).ignored('from-dockerignore', false)).toBe(true);
    await writeFile(join(ctx, '.containerignore'), 'from-containerignore\n');
    let ig = await loadIgnore(ctx);
    expect(ig.ignored('from-containerignore', false)).toBe(true);
    expect(ig.ignored('from-dockerignore', false)).toBe(false);
    // A Containerfile outside the context brings its own file.
    await writeFile(join(other, 'Build.cf'), 'FROM scratch\n');
    await writeFile(join(other, 'Build.cf.dockerignore'), 'from-cf-dockerignore\n');
    ig = await loadIgnore(ctx, join(other, 'Build.cf'));
    expect(ig.ignored('from-cf-dockerignore', false)).toBe(true);
    expect(ig.source).toBe(join(other, 'Build.cf.dockerignore'));
    await writeFile(join(other, 'Build.cf.containerignore'), 'from-cf-containerignore\n');
    expect((await loadIgnore(ctx, join(other, 'Build.cf'))).ignored('from-cf-containerignore', false)).toBe(true);
    // Relative Containerfile paths are inside the context.
    await mkdir(join(ctx, 'sub'));
    await writeFile(join(ctx, 'sub/Containerfile.dockerignore'), 'rel\n');
    expect((await loadIgnore(ctx, 'sub/Containerfile')).ignored('rel', false)).toBe(true);
    // No file at all: nothing ignored.
    expect((await loadIgnore(await tmp.make('ign-none'))).ignored('x', false)).toBe(false);
  });
});
