/**
 * A warm `stevedore run --rm IMAGE true` is mostly Node start-up and module loading (the benchmark
 * target is 0.6x podman's time), so the modules the run path loads are part of its contract:
 * the registry client (undici), the policy engine (sigstore), the copy engine, the unpacker
 * (tar-stream) and pino must load only when a pull, `--policy`, an unpack or an enabled log message
 * needs them. These tests record every module a real process loads (ESM and CommonJS) through a
 * loader hook: a check of the module graph, not a timing, so load on the machine cannot flake it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBusyboxImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { recordCli, recordModules as record } from '../harness/module-graph.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const SRC = resolve(HERE, '..', '..', 'src');

/** What a warm run of a stored image must not load (package directories and our own modules). */
const HEAVY = [
  'node_modules/undici/',
  'node_modules/@sigstore/',
  'node_modules/sigstore/',
  'node_modules/tar-stream/',
  'node_modules/pino/',
  'node_modules/sonic-boom/',
  'node_modules/thread-stream/',
  'src/registry/',
  'src/copy/',
  'src/policy/',
  'src/sign/',
  'src/build/',
  'src/k8s/',
  'src/runtime/unpack/unpack.ts',
  'src/runtime/lifecycle/monitor.ts',
];

let dir: string;
let image: FixtureImage;

const recordModules = (code: string) => record(dir, code, [], { STEVEDORE_ROOT: join(dir, 'store') });
const runMain = (args: string[], env: NodeJS.ProcessEnv = {}) => recordCli(dir, args, { STEVEDORE_ROOT: join(dir, 'store'), ...env });

function heavyIn(modules: string[]): string[] {
  return modules.filter((m) => HEAVY.some((h) => m.includes(h)));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stevedore-run-graph-'));
  image = await makeBusyboxImage(join(dir, 'layout'), 'bb');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the run verb loads only what running a stored image needs', () => {
  it('importing the run command module loads no registry client, policy engine, unpacker or pino', async () => {
    const r = await recordModules(`await import(${JSON.stringify(join(SRC, 'cli', 'commands', 'run.ts'))});`);
    expect(r.code, r.stderr).toBe(0);
    // The recorder sees the module graph at all: the runtime and the store are in it.
    expect(r.modules.some((m) => m.endsWith('src/runtime/container.ts'))).toBe(true);
    expect(r.modules.some((m) => m.endsWith('src/runtime/store/store.ts'))).toBe(true);
    expect(heavyIn(r.modules)).toEqual([]);
  });

  it('`stevedore run` of an image already in the store loads none of them, start to exit', async () => {
    // The first run pulls (from an OCI layout) and unpacks: the copy engine and the unpacker load.
    const first = await runMain(['run', '--rm', image.ociRef, 'true']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.modules.some((m) => m.includes('src/copy/'))).toBe(true);
    expect(first.modules.some((m) => m.includes('src/runtime/unpack/unpack.ts'))).toBe(true);
    expect(first.modules.some((m) => m.includes('node_modules/tar-stream/'))).toBe(true);

    const warm = await runMain(['run', '--rm', '--pull', 'never', image.ociRef, 'true']);
    expect(warm.code, warm.stderr).toBe(0);
    expect(warm.modules.some((m) => m.endsWith('src/runtime/oci-runtime.ts'))).toBe(true);
    expect(heavyIn(warm.modules)).toEqual([]);
  });

  it('pino loads when a message at an enabled level is logged, and the message is written', async () => {
    const r = await runMain(['--log-level', 'debug', 'run', '--rm', '--pull', 'never', image.ociRef, 'true']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.modules.some((m) => m.includes('node_modules/pino/'))).toBe(true);
    const started = r.stderr
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === 'container started');
    expect(started).toMatchObject({
      level: 20,
      component: 'container',
      image: expect.stringContaining('bb') as unknown,
      rootfs: expect.any(String) as unknown,
    });
  });

  it("other verbs of the store load their own modules, not run's", async () => {
    const r = await runMain(['images']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.modules.some((m) => m.endsWith('src/cli/commands/images.ts'))).toBe(true);
    expect(r.modules.filter((m) => /src\/cli\/commands\/(run|monitor|ps|rm|rmi|logs|stop)\.ts$/.test(m))).toEqual([]);
  });
});
