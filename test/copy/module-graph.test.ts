/**
 * A `sync` that finds its tags unchanged, or a `copy` whose destination has every blob, is mostly
 * Node start-up and module loading, so the modules those verbs load are part of their speed: the
 * registry client needs undici's Agent and request API, not its whole entry (fetch, WebSocket,
 * caches, mocks: ~110 ms); YAML, semver, the policy engine (sigstore) and tar-stream load only when
 * a YAML source, a semver selection, `--policy` or an archive needs them. These tests record every
 * module a real process loads (ESM and CommonJS) through a loader hook: a check of the module graph,
 * not a timing, so load on the machine cannot flake it.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { parseImageName } from '../../src/transports/index.js';
import { makeRandomImage } from '../../hack/lib/harness/images.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { recordCli } from '../harness/module-graph.js';

/** What a registry-to-registry copy or sync must not load unless asked for. */
const HEAVY = [
  'node_modules/undici/index.js',
  'node_modules/undici/lib/web/',
  'node_modules/undici/lib/mock/',
  'node_modules/yaml/',
  'node_modules/semver/',
  'node_modules/@sigstore/',
  'node_modules/sigstore/',
  'node_modules/tweetnacl/',
  'node_modules/tar-stream/',
  'src/policy/',
  'src/sign/sign.ts',
  'src/sign/verify.ts',
];

const temps = new TempDirs();
let reg: TestRegistry;
let dir: string;

const runMain = (args: string[]) => recordCli(dir, args, { REGISTRY_AUTH_FILE: join(dir, 'auth.json') });

const heavyIn = (modules: string[]) => modules.filter((m) => HEAVY.some((h) => m.includes(h)));

beforeAll(async () => {
  reg = await startRegistry({ name: 'copy-graph' });
  dir = await temps.make('graph');
  await writeFile(join(dir, 'auth.json'), '{"auths":{}}');
  const image = await makeRandomImage({ layers: 1, layerSize: 16 * 1024, layoutDir: await temps.make('img') });
  await copyReference(parseImageName(image.ociRef), parseImageName(`docker://${reg.host}/graph/app:1`));
});

afterAll(async () => {
  await reg?.stop();
  await temps.cleanup();
});

describe('copy and sync load only what a registry-to-registry run needs', () => {
  it("`sync --src docker` loads undici's Agent, not its entry, and no YAML, semver, policy engine or tar", async () => {
    const first = await runMain(['sync', '--src', 'docker', '--dest', 'docker', `${reg.host}/graph/app`, `${reg.host}/mirror`]);
    expect(first.code, first.stderr).toBe(0);
    // The recorder sees the graph at all: the engine and undici's client are in it.
    expect(first.modules.some((m) => m.endsWith('src/copy/sync.ts'))).toBe(true);
    expect(first.modules.some((m) => m.endsWith('node_modules/undici/lib/dispatcher/agent.js'))).toBe(true);
    expect(heavyIn(first.modules)).toEqual([]);
    // Again, now that every tag is unchanged.
    const again = await runMain(['sync', '--src', 'docker', '--dest', 'docker', `${reg.host}/graph/app`, `${reg.host}/mirror`]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain('1 unchanged');
    expect(heavyIn(again.modules)).toEqual([]);
  });

  it('`copy docker:// docker://` loads none of them either', async () => {
    const r = await runMain(['copy', '--progress', 'none', `docker://${reg.host}/graph/app:1`, `docker://${reg.host}/graph/copy:1`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.modules.some((m) => m.endsWith('src/copy/copy.ts'))).toBe(true);
    expect(heavyIn(r.modules)).toEqual([]);
  });

  it('a YAML source and a semver selection load YAML and semver when they are needed', async () => {
    const config = join(dir, 'sync.yaml');
    await writeFile(config, `${reg.host}:\n  tls-verify: false\n  images-by-semver:\n    graph/app: ">=0"\n`);
    const r = await runMain(['sync', '--src', 'yaml', '--dest', 'docker', '--dry-run', config, `${reg.host}/yaml`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.modules.some((m) => m.includes('node_modules/yaml/'))).toBe(true);
    expect(r.modules.some((m) => m.includes('node_modules/semver/'))).toBe(true);
  });
});
