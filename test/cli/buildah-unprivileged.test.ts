/**
 * `stevedore buildah` as an ImageBuild's script Pod runs it: an unprivileged user (65532) with no
 * subordinate ids, so every verb runs in a user namespace holding that one id and every file on
 * disk is the caller's. `copy --chown`/`add --chown` must still reach the pushed layer with the
 * owners asked for (kept in the layers' headers, not on disk); `run` works as root of that
 * namespace, a chown to another id inside it fails (as with rootless buildah without subuids).
 */
import { execFileSync } from 'node:child_process';
import { chown, mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBusyboxImage } from '../../hack/lib/harness/images.js';
import { runCommand } from '../../hack/lib/harness/procs.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { cleanupCli, cliTempDir, ensureBuilt, REPO_ROOT } from './stevedore.js';

const UID = 65532;
let work: string;
let base: string;
let reg: TestRegistry;

/** `stevedore buildah VERB ...` as uid/gid 65532 with no supplementary groups, in `work/src`. */
const bh = (...args: string[]) =>
  runCommand(
    'setpriv',
    ['--reuid', String(UID), '--regid', String(UID), '--clear-groups', process.execPath, join(REPO_ROOT, 'bin', 'stevedore.js'), 'buildah', ...args],
    {
      cwd: join(work, 'src'),
      env: {
        PATH: process.env.PATH,
        HOME: join(work, 'home'),
        STEVEDORE_ROOT: join(work, 'store'),
        XDG_RUNTIME_DIR: join(work, 'home'),
        XDG_CONFIG_HOME: join(work, 'home'),
        REGISTRY_AUTH_FILE: join(work, 'home', 'auth.json'),
      },
      timeoutMs: 120_000,
    },
  );

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
async function get(path: string, accept?: string): Promise<Buffer> {
  const res = await fetch(`${reg.url}/v2/${path}`, { headers: accept ? { accept } : {} });
  if (!res.ok) throw new Error(`GET ${path}: ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

/** The pushed image's config and its top layer's tar listing: `path → mode uid/gid`. */
async function pushed(repo: string): Promise<{ config: { config: { User?: string } }; top: Map<string, string> }> {
  const manifest = JSON.parse((await get(`${repo}/manifests/1`, MANIFEST)).toString()) as { config: { digest: string }; layers: { digest: string }[] };
  const config = JSON.parse((await get(`${repo}/blobs/${manifest.config.digest}`)).toString()) as { config: { User?: string } };
  const file = join(work, `${repo.replace(/\//g, '-')}.tar`);
  await writeFile(file, await get(`${repo}/blobs/${manifest.layers.at(-1)!.digest}`));
  const top = new Map<string, string>();
  for (const line of execFileSync('tar', ['-tvf', file, '--numeric-owner'], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
    const parts = line.trim().split(/\s+/);
    top.set(
      parts
        .slice(5)
        .join(' ')
        .replace(/ -> .*$/, '')
        .replace(/\/$/, ''),
      `${parts[0]} ${parts[1]}`,
    );
  }
  return { config, top };
}

beforeAll(async () => {
  // setpriv needs root to switch to 65532; the test is about that user, so it cannot run otherwise.
  if (process.geteuid?.() !== 0) throw new Error('test/cli/buildah-unprivileged.test.ts must run as root (it drops to uid 65532 with setpriv)');
  [reg] = await Promise.all([startRegistry({ name: 'buildah-unprivileged' }), ensureBuilt()]);
  work = await cliTempDir('buildah-unpriv');
  // The user must reach its own work dir: every directory above it needs o+x (the default /tmp has).
  for (let d = dirname(work); d !== dirname(d); d = dirname(d)) {
    if (((await stat(d)).mode & 0o001) === 0) throw new Error(`${d} lacks o+x: uid ${UID} cannot reach ${work} (set TMPDIR to a directory it can)`);
  }
  base = (await makeBusyboxImage(join(work, 'busybox'), 'bb')).ociRef;
  execFileSync('chmod', ['-R', 'a+rX', join(work, 'busybox')]);
  for (const d of ['src', 'src/tree/sub', 'home', 'store']) await mkdir(join(work, d), { recursive: true });
  await writeFile(join(work, 'src', 'greeting.txt'), 'hello\n', { mode: 0o640 });
  await writeFile(join(work, 'src', 'tree', 'a'), 'a\n');
  await writeFile(join(work, 'src', 'tree', 'sub', 'b'), 'b\n', { mode: 0o600 });
  execFileSync('tar', ['-cf', join(work, 'src', 'bundle.tar'), '-C', join(work, 'src', 'tree'), '.']);
  execFileSync('chown', ['-R', `${UID}:${UID}`, join(work, 'src'), join(work, 'home'), join(work, 'store')]);
  await chown(work, UID, UID);
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  await cleanupCli();
});

describe('stevedore buildah without subordinate ids', () => {
  it('keeps copy --chown and add --chown owners in the committed layer, with run steps between', async () => {
    const from = await bh('from', base);
    expect(from.code, from.stderr).toBe(0);
    const c = from.stdout.trim();
    for (const args of [
      ['copy', '--chown', '1000:1000', c, 'greeting.txt', '/app/greeting.txt'],
      ['run', c, '--', 'sh', '-c', 'echo present > /app/state'],
      ['copy', '--chown', '1001:1002', c, 'tree', '/srv'],
      ['add', '--chown', '1003:1003', c, 'bundle.tar', '/opt'],
      ['config', '--user', '1000:1000', c],
    ]) {
      const r = await bh(...args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    }
    const commit = await bh('commit', '--tls-verify=false', c, `docker://${reg.host}/unpriv/app:1`);
    expect(commit.code, commit.stderr).toBe(0);

    const { config, top } = await pushed('unpriv/app');
    expect(config.config.User).toBe('1000:1000');
    // Owners as asked, modes as the sources had them.
    expect(top.get('app/greeting.txt')).toBe('-rw-r----- 1000/1000');
    expect(top.get('srv')).toBe('drwxr-xr-x 1001/1002');
    expect(top.get('srv/a')).toBe('-rw-r--r-- 1001/1002');
    expect(top.get('srv/sub/b')).toBe('-rw------- 1001/1002');
    expect(top.get('opt/a')).toBe('-rw-r--r-- 1003/1003');
    expect(top.get('opt/sub/b')).toBe('-rw------- 1003/1003');
    // What the run step wrote is root's (the only id in the namespace), also the directory it
    // wrote into, which copy --chown had made 1000's (docs/scripted-builds.md#without-subordinate-ids).
    expect(top.get('app/state')).toBe('-rw-r--r-- 0/0');
    expect(top.get('app')).toBe('drwxr-xr-x 0/0');
    await bh('rm', c);
  }, 300_000);

  it('runs commands as root of the namespace; a chown to another id fails, and a non-root user is refused by name', async () => {
    const c = (await bh('from', base)).stdout.trim();
    const ok = await bh('run', c, '--', 'sh', '-c', 'id -u && echo ok > /ok');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toBe('0\n');
    const chownRun = await bh('run', c, '--', 'sh', '-c', 'chown 1000:1000 /ok');
    expect(chownRun.code).not.toBe(0);
    expect(chownRun.stdout + chownRun.stderr).toMatch(/Invalid argument/);
    // No other id to switch to: refused before runc, naming the user and what to do.
    const asUser = await bh('run', '--user', '1000', c, '--', 'id');
    expect(asUser.code).not.toBe(0);
    expect(asUser.stderr).toMatch(/user "1000" \(uid 1000, gid 0\): .*one id \(uid 65532 has no subordinate ids/);
    expect((await bh('config', '--user', 'nobody', c)).code).toBe(0);
    const asConfigured = await bh('run', c, '--', 'id');
    expect(asConfigured.code).not.toBe(0);
    expect(asConfigured.stderr).toMatch(/user "nobody" \(uid 65534, gid 65534\): .*set config --user after the last run/);
    const asRoot = await bh('run', '--user', 'root', c, '--', 'sh', '-c', 'id -u');
    expect(asRoot.code, asRoot.stderr).toBe(0);
    expect(asRoot.stdout).toBe('0\n');
    await bh('rm', c);
  }, 300_000);
});
