/**
 * The builder's corpus: each Containerfile under test/build/corpus is built with `stevedore build`
 * and with Debian's `buildah bud --layers --format docker` from the same busybox base image in a real
 * registry, and the two images are compared: flattened filesystems (path, type, mode, owner, content
 * hash, link target) and the runtime config. Where buildah 1.28 lacks a feature (heredocs), the
 * case's `case.json` states the expected files instead. Every image Stevedore builds passes the OCI
 * schemas and runs under `stevedore run`.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { parseImageName } from '../../src/transports/index.js';
import { cleanupCli, cliTempDir, REPO_ROOT, stevedore } from '../cli/stevedore.js';
import { makeBusyboxImage } from '../../hack/lib/harness/images.js';
import { validateOci } from '../../hack/lib/harness/schema.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { buildah, configSubset, diffFs, dropBuildahMountPoints, fileText, flatten, loadImage } from './corpus/harness.js';

const CORPUS = join(REPO_ROOT, 'test', 'build', 'corpus');

interface CaseSpec {
  buildArgs?: Record<string, string>;
  target?: string;
  /** false: buildah cannot build it (feature too new); `files` states the result instead. */
  buildah?: boolean;
  files?: Record<string, string>;
  /** Mount points buildah 1.28 leaves in the image for this case's RUN --mount targets. */
  buildahMountPoints?: string[];
  /** false: the image has no busybox to run. */
  run?: boolean;
}

const cases = (await readdir(CORPUS, { withFileTypes: true }))
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

let reg: TestRegistry;
let base: string;
let work: string;
let store: string;
let buildahRoot: string;

beforeAll(async () => {
  work = await cliTempDir('build-corpus');
  store = join(work, 'store');
  buildahRoot = join(work, 'buildah');
  reg = await startRegistry();
  const bb = await makeBusyboxImage(join(work, 'busybox'), 'bb');
  base = `${reg.host}/corpus/busybox:1`;
  await copyReference(parseImageName(bb.ociRef), parseImageName(`docker://${base}`));
}, 60_000);

afterAll(async () => {
  await reg?.stop();
  await cleanupCli();
});

async function caseSpec(name: string): Promise<CaseSpec> {
  const p = join(CORPUS, name, 'case.json');
  return existsSync(p) ? (JSON.parse(await readFile(p, 'utf8')) as CaseSpec) : {};
}

function buildArgs(spec: CaseSpec): string[] {
  const args = { BASE: base, ...(spec.buildArgs ?? {}) };
  return Object.entries(args).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
}

describe('corpus: stevedore build matches buildah bud', () => {
  it('has at least 15 Containerfiles', () => {
    expect(cases.length).toBeGreaterThanOrEqual(15);
  });

  for (const name of cases) {
    it(`${name}: same filesystem and config as buildah; valid OCI; runs`, async () => {
      const spec = await caseSpec(name);
      const dir = join(CORPUS, name);
      const out = join(work, `out-${name}`);
      const target = spec.target ? ['--target', spec.target] : [];
      const built = await stevedore(
        [
          'build',
          '--root',
          store,
          '-q',
          '--format',
          'docker',
          ...buildArgs(spec),
          ...target,
          '-f',
          join(dir, 'Containerfile'),
          '-t',
          `oci:${out}:stevedore`,
          dir,
        ],
        { timeoutMs: 120_000 },
      );
      expect(built.code, built.stderr).toBe(0);
      expect(built.stdout.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);

      const ours = await loadImage(out, 'stevedore');
      validateOci('manifest', JSON.parse(ours.manifestBytes.toString()));
      validateOci('config', JSON.parse(ours.configBytes.toString()));
      const ourFs = await flatten(out, 'stevedore');

      if (spec.buildah !== false) {
        const tag = `localhost/corpus-${name}`;
        const b = await buildah(buildahRoot, [
          'bud',
          '--runtime',
          'runc',
          '--layers',
          '--format',
          'docker',
          '--tls-verify=false',
          ...buildArgs(spec),
          ...target,
          '-f',
          join(dir, 'Containerfile'),
          '-t',
          tag,
          dir,
        ]);
        expect(b.code, b.stderr + b.stdout).toBe(0);
        // v2s2 keeps Docker's config fields (Healthcheck, OnBuild, Shell) that an OCI config drops.
        const pushed = await buildah(buildahRoot, ['push', '--format', 'v2s2', tag, `oci:${out}:buildah`]);
        expect(pushed.code, pushed.stderr).toBe(0);
        const theirs = await loadImage(out, 'buildah');
        const theirFs = dropBuildahMountPoints(await flatten(out, 'buildah'), spec.buildahMountPoints ?? []);
        expect(diffFs(ourFs, theirFs)).toEqual([]);
        expect(configSubset(ours.config)).toEqual(configSubset(theirs.config));
      }
      for (const [path, content] of Object.entries(spec.files ?? {})) {
        expect(await fileText(out, 'stevedore', path), path).toBe(content);
      }

      if (spec.run !== false) {
        const r = await stevedore(['run', '--root', store, '--rm', '--entrypoint', '/bin/busybox', `oci:${out}:stevedore`, 'echo', 'runs'], {
          timeoutMs: 60_000,
        });
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toBe('runs\n');
      }
    }, 240_000);
  }
});
