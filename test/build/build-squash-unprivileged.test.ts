/**
 * `stevedore build --squash` as a build Pod runs it: uid 65532 with no subordinate ids, so the
 * build runs in a user namespace holding that one id and every file on disk is the caller's. The
 * squashed layer must still carry the owners the steps' layers recorded (`COPY --chown`), not the
 * caller's: it is merged from the layers' own tar headers, not from a diff of two filesystems.
 */
import { execFileSync } from 'node:child_process';
import { chown, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBusyboxImage } from '../../hack/lib/harness/images.js';
import { runCommand } from '../../hack/lib/harness/procs.js';
import { cleanupCli, cliTempDir, ensureBuilt, REPO_ROOT } from '../cli/stevedore.js';

const UID = 65532;
let work: string;
let base: string;

/** `stevedore ARGS...` as uid/gid 65532 with no supplementary groups. */
const asUser = (...args: string[]) =>
  runCommand('setpriv', ['--reuid', String(UID), '--regid', String(UID), '--clear-groups', process.execPath, join(REPO_ROOT, 'bin', 'stevedore.js'), ...args], {
    cwd: join(work, 'src'),
    env: {
      PATH: process.env.PATH,
      HOME: join(work, 'home'),
      STEVEDORE_ROOT: join(work, 'store'),
      XDG_RUNTIME_DIR: join(work, 'home'),
      XDG_CONFIG_HOME: join(work, 'home'),
    },
    timeoutMs: 180_000,
  });

/** The manifest's layer digests and the last layer's tar listing (`path → mode uid/gid`) of `out:tag`. */
async function layers(out: string, tag: string): Promise<{ count: number; top: Map<string, string> }> {
  const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
  const desc = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag)!;
  const blob = (digest: string) => join(out, 'blobs', ...digest.split(':'));
  const manifest = JSON.parse(await readFile(blob(desc.digest), 'utf8')) as { layers: { digest: string }[] };
  const top = new Map<string, string>();
  for (const line of execFileSync('tar', ['-tvf', blob(manifest.layers.at(-1)!.digest), '--numeric-owner'], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)) {
    const parts = line.trim().split(/\s+/);
    top.set(
      parts
        .slice(5)
        .join(' ')
        .replace(/ -> .*$/, '')
        .replace(/^\.\//, '')
        .replace(/\/$/, ''),
      `${parts[0]} ${parts[1]}`,
    );
  }
  return { count: manifest.layers.length, top };
}

beforeAll(async () => {
  // setpriv needs root to switch to 65532; the test is about that user, so it cannot run otherwise.
  if (process.geteuid?.() !== 0) throw new Error('test/build/build-squash-unprivileged.test.ts must run as root (it drops to uid 65532 with setpriv)');
  await ensureBuilt();
  work = await cliTempDir('squash-unpriv');
  for (let d = dirname(work); d !== dirname(d); d = dirname(d)) {
    if (((await stat(d)).mode & 0o001) === 0) throw new Error(`${d} lacks o+x: uid ${UID} cannot reach ${work} (set TMPDIR to a directory it can)`);
  }
  base = (await makeBusyboxImage(join(work, 'busybox'), 'bb')).ociRef;
  execFileSync('chmod', ['-R', 'a+rX', join(work, 'busybox')]);
  for (const d of ['src', 'home', 'store', 'out']) await mkdir(join(work, d), { recursive: true });
  await writeFile(join(work, 'src', 'f'), 'owned\n', { mode: 0o640 });
  await writeFile(join(work, 'src', 'Containerfile'), `FROM ${base}\nCOPY --chown=1000:1000 f /f\nCOPY f /gone\nRUN echo ran > /ran && rm /bin/false /gone\n`);
  execFileSync('chown', ['-R', `${UID}:${UID}`, join(work, 'src'), join(work, 'home'), join(work, 'store'), join(work, 'out')]);
  await chown(work, UID, UID);
}, 120_000);

afterAll(async () => {
  await cleanupCli();
});

describe('stevedore build --squash without subordinate ids', () => {
  it('keeps COPY --chown owners in the one squashed layer, with a RUN step after it; what the steps added and removed leaves no whiteout', async () => {
    const out = join(work, 'out', 'layout');
    const r = await asUser('build', '-q', '--squash', '-t', `oci:${out}:sq`, '.');
    expect(r.code, r.stderr).toBe(0);
    const { count, top } = await layers(out, 'sq');
    // The base's one layer, then the squashed one.
    expect(count).toBe(2);
    expect(top.get('f')).toBe('-rw-r----- 1000/1000');
    // What RUN wrote is root's (the only id in the namespace); its deletion is a whiteout.
    expect(top.get('ran')).toBe('-rw-r--r-- 0/0');
    expect(top.has('bin/.wh.false')).toBe(true);
    // A file the squashed steps added and removed leaves nothing, not even a whiteout naming it.
    expect([...top.keys()].filter((k) => k.includes('gone'))).toEqual([]);
  }, 300_000);
});
