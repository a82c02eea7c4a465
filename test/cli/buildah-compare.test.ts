/**
 * The acceptance for scripted builds: the same shell script (from, config, copy, run with a
 * shell conditional, commit) run by buildah 1.28 (its own --root/--runroot, vfs, runc) and by
 * `stevedore buildah` through a `buildah` shell function (a temp store) gives the same flattened filesystem (umoci unpack of
 * each image: types, modes, owners, sizes, contents, link targets) and the same config, layers and
 * history as buildah writes them.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBusyboxImage } from '../../hack/lib/harness/images.js';
import { snapshot } from '../build/fixtures-layers/oci-apply.js';
import { runCommand } from '../../hack/lib/harness/procs.js';
import { cleanupCli, cliTempDir, ensureBuilt, REPO_ROOT } from './stevedore.js';

interface Image {
  rootfs: string[];
  manifest: { layers: unknown[]; annotations?: Record<string, string> };
  config: {
    author?: string;
    config: Record<string, unknown> & { Labels?: Record<string, string> };
    history: { created_by?: string; comment?: string; author?: string; empty_layer?: boolean }[];
    rootfs: { diff_ids: string[] };
  };
}

let work: string;
let base: string;
let layoutDir: string | undefined;
let ctx: string;
let buildahImage: Image;
let ourImage: Image;
let buildahSquashed: Image;
let ourSquashed: Image;

/** The script both tools run, unchanged; `buildah` is a shell function each run defines. */
const SCRIPT = `set -eu
c=$(buildah from "$BASE")
buildah config --env GREETING=hello --env 'PATH=/app/bin:$PATH' --port 8080 --cmd 'echo "hi there"' \\
  --entrypoint '["/bin/sh","-c"]' --workingdir /app --user 0:0 --label stage=test \\
  --annotation org.example.note=yes --author scripted "$c"
buildah copy --chown 12:34 "$c" ctx/data /app/data
buildah copy --chmod 600 "$c" ctx/data/a.txt /app/secret.txt
# A conditional in the script, on what a command in the container says ...
if buildah run "$c" -- sh -c 'grep -q hello /app/data/a.txt'; then
  # ... and one inside the container.
  buildah run "$c" -- sh -c 'if [ -f /app/data/a.txt ]; then echo found > /app/result; rm /etc/group; else echo missing > /app/result; fi; mkdir -p /var/empty; ln -s /app/result /app/link'
else
  buildah run "$c" -- sh -c 'echo missing > /app/result'
fi
buildah commit "$c" scripted-test:1
buildah commit --squash "$c" scripted-test:squashed
`;

async function readLayoutImage(layout: string, ref: string, rootfsDir: string): Promise<Image> {
  execFileSync('umoci', ['raw', 'unpack', '--image', `${layout}:${ref}`, rootfsDir], { stdio: ['ignore', 'ignore', 'pipe'] });
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
  const desc = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === ref)!;
  const blob = async (d: string): Promise<unknown> => JSON.parse(await readFile(join(layout, 'blobs', 'sha256', d.slice(7)), 'utf8'));
  const manifest = (await blob(desc.digest)) as Image['manifest'] & { config: { digest: string } };
  const config = (await blob(manifest.config.digest)) as Image['config'];
  return { rootfs: snapshot(rootfsDir), manifest, config };
}

beforeAll(async () => {
  work = await cliTempDir('buildah-cmp');
  // buildah names an oci: image after its path, which must then be lower case.
  layoutDir = join(tmpdir(), `stevedore-bhcmp-${randomBytes(6).toString('hex')}`);
  base = (await makeBusyboxImage(layoutDir, 'bb')).ociRef;
  ctx = join(work, 'ctx');
  await mkdir(join(ctx, 'data', 'sub'), { recursive: true });
  await writeFile(join(ctx, 'data', 'a.txt'), 'hello\n');
  await writeFile(join(ctx, 'data', 'sub', 'run.sh'), '#!/bin/sh\necho run\n');
  await chmod(join(ctx, 'data', 'sub', 'run.sh'), 0o755);

  // One shell script, run twice: with buildah 1.28 (storage of its own) and with
  // `buildah() { stevedore buildah "$@"; }`, as docs/scripted-builds.md tells users to alias it.
  await writeFile(join(work, 'script.sh'), SCRIPT);
  const runScript = async (prelude: string, env: NodeJS.ProcessEnv): Promise<string> => {
    const r = await runCommand('sh', ['-c', `${prelude}\n. ./script.sh`], { cwd: work, env: { ...process.env, ...env, BASE: base }, timeoutMs: 240_000 });
    if (r.code !== 0) throw new Error(`script exited ${r.code}: ${r.stderr}`);
    return r.stdout.trim().split('\n').pop()!;
  };
  const bhId = await runScript('buildah() { command buildah --root "$PWD/bh-root" --runroot "$PWD/bh-runroot" --storage-driver vfs "$@"; }', {
    BUILDAH_ISOLATION: 'oci',
    BUILDAH_RUNTIME: 'runc',
  });
  expect(bhId).toMatch(/^[0-9a-f]{64}$/);
  const bh = ['--root', join(work, 'bh-root'), '--runroot', join(work, 'bh-runroot'), '--storage-driver', 'vfs'];
  execFileSync('buildah', [...bh, 'push', 'scripted-test:1', `oci:${join(work, 'bh-layout')}:t`], { stdio: ['ignore', 'ignore', 'pipe'] });
  execFileSync('buildah', [...bh, 'push', 'scripted-test:squashed', `oci:${join(work, 'bh-layout')}:sq`], { stdio: ['ignore', 'ignore', 'pipe'] });
  buildahImage = await readLayoutImage(join(work, 'bh-layout'), 't', join(work, 'bh-rootfs'));
  buildahSquashed = await readLayoutImage(join(work, 'bh-layout'), 'sq', join(work, 'bh-rootfs-sq'));
  execFileSync('buildah', [...bh, 'rm', '--all'], { stdio: 'ignore' });
  execFileSync('buildah', [...bh, 'rmi', '--all', '--force'], { stdio: 'ignore' });

  await ensureBuilt();
  const root = join(work, 'st-root');
  const isolated = { REGISTRY_AUTH_FILE: join(work, 'no-auth.json'), XDG_CONFIG_HOME: join(work, 'xdg'), DOCKER_CONFIG: join(work, 'docker') };
  const ourId = await runScript('buildah() { "$NODE" "$BIN" buildah "$@"; }', {
    ...isolated,
    STEVEDORE_ROOT: root,
    NODE: process.execPath,
    BIN: join(REPO_ROOT, 'bin', 'stevedore.js'),
  });
  expect(ourId).toMatch(/^[0-9a-f]{64}$/);
  ourImage = await readLayoutImage(join(root, 'images'), 'localhost/scripted-test:1', join(work, 'st-rootfs'));
  ourSquashed = await readLayoutImage(join(root, 'images'), 'localhost/scripted-test:squashed', join(work, 'st-rootfs-sq'));
}, 300_000);
afterAll(async () => {
  if (layoutDir) await rm(layoutDir, { recursive: true, force: true });
  await cleanupCli();
});

describe('stevedore buildah matches buildah 1.28 on the same script', () => {
  it('gives the same flattened filesystem', () => {
    // The comparison means something only if the script's effects are there.
    expect(buildahImage.rootfs.some((l) => l.includes('app/result'))).toBe(true);
    expect(buildahImage.rootfs.some((l) => l.includes('etc/group'))).toBe(false);
    expect(buildahImage.rootfs.some((l) => l.includes('app/data/a.txt') && l.includes('12:34'))).toBe(true);
    // buildah's run leaves the placeholders of its mounts behind (empty /dev, /proc, /run, /sys and
    // empty 0755 /etc/hosts, /etc/hostname, /etc/resolv.conf); stevedore drops them, as its
    // `build` does (docs/scripted-builds.md). Everything else must be the same.
    const placeholders = [
      'd 755 0:0 - dev',
      'd 755 0:0 - proc',
      'd 755 0:0 - run',
      'd 755 0:0 - sys',
      ...['hostname', 'hosts', 'resolv.conf'].map((f) => `f 755 0:0 0 etc/${f} e3b0c44298fc1c14`),
    ];
    const isPlaceholder = (l: string): boolean => placeholders.includes(l);
    expect(buildahImage.rootfs.filter(isPlaceholder).sort()).toEqual([...placeholders].sort());
    expect(ourImage.rootfs.filter(isPlaceholder)).toEqual([]);
    expect(ourImage.rootfs).toEqual(buildahImage.rootfs.filter((l) => !isPlaceholder(l)));
    expect(ourSquashed.rootfs).toEqual(buildahSquashed.rootfs.filter((l) => !isPlaceholder(l)));
  });

  it('writes the same config, one layer per commit and the same history entry', () => {
    const { 'io.buildah.version': _v, ...bhLabels } = buildahImage.config.config.Labels ?? {};
    const { Labels: _l1, ...bhConfig } = buildahImage.config.config;
    const { Labels: ourLabels, ...ourConfig } = ourImage.config.config;
    expect(ourConfig).toEqual(bhConfig);
    expect(ourLabels).toEqual(bhLabels);
    expect(ourImage.config.author).toBe(buildahImage.config.author);
    expect(ourImage.manifest.layers).toHaveLength(buildahImage.manifest.layers.length);
    expect(ourImage.config.rootfs.diff_ids[0]).toBe(buildahImage.config.rootfs.diff_ids[0]);
    const shape = (h: Image['config']['history']) =>
      h.map((e) => ({ created_by: e.created_by, author: e.author, empty_layer: e.empty_layer ?? false, from: e.comment?.startsWith('FROM ') ?? false }));
    expect(shape(ourImage.config.history)).toEqual(shape(buildahImage.config.history));
    // --squash: one layer, one history entry, in both.
    expect(ourSquashed.manifest.layers).toHaveLength(buildahSquashed.manifest.layers.length);
    expect(shape(ourSquashed.config.history)).toEqual(shape(buildahSquashed.config.history));
    expect(buildahSquashed.manifest.layers).toHaveLength(1);
    const ann = (m: Image['manifest']) => ({ note: m.annotations?.['org.example.note'], base: m.annotations?.['org.opencontainers.image.base.digest'] });
    expect(ann(ourImage.manifest)).toEqual(ann(buildahImage.manifest));
  });
});
