/**
 * bin/stevedore.js checks the Node version before it loads dist/: on an older Node the command says
 * which version it needs, instead of dying on an import only newer Node has (node:zlib's zstd).
 *
 * An older Node is played by the pinned one with `process.versions.node` redefined before the entry
 * point runs (a `--import` preload), so the test needs no second Node installation.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '../../hack/lib/harness/procs.js';
import { ensureBuilt, REPO_ROOT } from './stevedore.js';

const BIN = join(REPO_ROOT, 'bin', 'stevedore.js');

function asNode(version: string): string[] {
  const preload = `Object.defineProperty(process.versions, 'node', { value: ${JSON.stringify(version)} });`;
  return ['--import', `data:text/javascript,${encodeURIComponent(preload)}`, BIN, '--help'];
}

describe('bin/stevedore.js on an older Node', () => {
  beforeAll(() => ensureBuilt());

  it('says it needs Node >= 24 and exits 125 before loading anything else', async () => {
    const r = await runCommand(process.execPath, asNode('20.20.2'));
    expect(r.code).toBe(125);
    expect(r.stderr.trim()).toBe(`stevedore: needs Node.js >= 24, this is 20.20.2 (${process.execPath})`);
    expect(r.stdout).toBe('');
  });

  it('runs on Node 24', async () => {
    const r = await runCommand(process.execPath, asNode('24.0.0'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Usage: stevedore');
  });
});
