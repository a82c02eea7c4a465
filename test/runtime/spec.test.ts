import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEnvFile, parseEnvFlags, parseIdMap, parseMemory, parseVolume } from '../../src/cli/commands/run.js';
import type { ImageConfig } from '../../src/oci/config.js';
import { cgroupMode } from '../../src/runtime/cgroups.js';
import { rootlessMappings } from '../../src/runtime/idmap.js';
import { parseProcLimits } from '../../src/runtime/limits.js';
import { K8sFileLog, MAX_LOG_LINE, parseK8sLog } from '../../src/runtime/logs.js';
import { classifyStartFailure, ociRuntime } from '../../src/runtime/oci-runtime.js';
import { commandLine, DEFAULT_CAPABILITIES, generateSpec, mergeEnv, specJson, type SpecOptions } from '../../src/runtime/spec.js';
import { parseUlimit } from '../../src/runtime/ulimits.js';
import { chainIds, normaliseImageName } from '../../src/runtime/store/index.js';
import { reexecCommand } from '../../src/runtime/rootless.js';
import { resolveUser } from '../../src/runtime/users.js';
import { runtimeConfigErrors } from './runtime-schema.js';

let dir: string;
let rootfs: string;

const image = (config: ImageConfig['config'] = {}): ImageConfig => ({
  architecture: 'amd64',
  os: 'linux',
  rootfs: { type: 'layers', diff_ids: [] },
  config: { Env: ['PATH=/usr/bin:/bin', 'LANG=C'], Cmd: ['/bin/sh'], ...config },
});

const base: SpecOptions = { id: 'c0ffee', callerLimits: { nofile: 20000, nproc: 5000 }, controllers: new Set(['memory', 'cpu', 'pids']), cgroupMode: 'v1' };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stevedore-spec-'));
  rootfs = join(dir, 'rootfs');
  await mkdir(join(rootfs, 'etc'), { recursive: true });
  await writeFile(
    join(rootfs, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\nnobody:x:65534:65534::/nonexistent:/bin/false\n',
  );
  await writeFile(join(rootfs, 'etc/group'), 'root:x:0:\nwheel:x:10:app,other\napp:x:1000:\naudio:x:29:app\nnogroup:x:65534:\n');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('command line (Docker rules)', () => {
  it('is Entrypoint + Cmd; args replace Cmd; --entrypoint replaces Entrypoint and clears Cmd', () => {
    const cfg = { Entrypoint: ['/ep'], Cmd: ['a', 'b'] };
    expect(commandLine(cfg, {})).toEqual(['/ep', 'a', 'b']);
    expect(commandLine(cfg, { args: ['x'] })).toEqual(['/ep', 'x']);
    expect(commandLine(cfg, { entrypoint: '/other' })).toEqual(['/other']);
    expect(commandLine(cfg, { entrypoint: '/other', args: ['y'] })).toEqual(['/other', 'y']);
    expect(commandLine(cfg, { entrypoint: '["/bin/sh","-c"]', args: ['echo'] })).toEqual(['/bin/sh', '-c', 'echo']);
    expect(commandLine({ Cmd: ['c'] }, { entrypoint: '', args: ['z'] })).toEqual(['z']);
    expect(() => commandLine({ Entrypoint: null, Cmd: null }, {})).toThrow(/no command or entrypoint/);
    expect(() => commandLine({ Cmd: ['c'] }, { entrypoint: '' })).toThrow(/no command/);
  });
});

describe('environment', () => {
  it('keeps image values, adds defaults, lets -e win, keeps order', () => {
    expect(mergeEnv(['A=1', 'PATH=/x'], ['A=2', 'B=3'], { HOME: '/root' })).toEqual(['PATH=/x', 'A=2', 'HOME=/root', 'B=3']);
    expect(mergeEnv(undefined, undefined, {})).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    expect(() => mergeEnv([], ['=x'], {})).toThrow(/not KEY=VALUE/);
  });

  it('reads -e and --env-file as Docker does', () => {
    expect(parseEnvFlags(['A=1', 'HOMEISH', 'B=x=y'], { HOMEISH: 'h' })).toEqual(['A=1', 'HOMEISH=h', 'B=x=y']);
    expect(parseEnvFlags(['UNSET'], {})).toEqual([]);
    expect(parseEnvFile('# c\n\nA=1\n  B=two words\r\nC\n', { C: 'c' })).toEqual(['A=1', 'B=two words', 'C=c']);
  });
});

describe('users', () => {
  it('resolves names and numbers through the rootfs passwd and group files', async () => {
    expect(await resolveUser(rootfs, undefined)).toMatchObject({ uid: 0, gid: 0, home: '/root' });
    expect(await resolveUser(rootfs, 'app')).toEqual({ uid: 1000, gid: 1000, additionalGids: [10, 29], home: '/home/app', name: 'app' });
    expect(await resolveUser(rootfs, '1000')).toMatchObject({ uid: 1000, gid: 1000, additionalGids: [10, 29] });
    expect(await resolveUser(rootfs, 'app:wheel')).toMatchObject({ uid: 1000, gid: 10, additionalGids: [29] });
    expect(await resolveUser(rootfs, '4242')).toEqual({ uid: 4242, gid: 0, additionalGids: [], home: '/' });
    expect(await resolveUser(rootfs, '4242:77')).toMatchObject({ uid: 4242, gid: 77 });
    await expect(resolveUser(rootfs, 'ghost')).rejects.toThrow(/unable to find user ghost/);
    await expect(resolveUser(rootfs, 'app:ghosts')).rejects.toThrow(/unable to find group ghosts/);
  });

  it('reads /etc/passwd through symlinks without leaving the rootfs', async () => {
    const evil = join(dir, 'evil');
    await mkdir(join(evil, 'etc'), { recursive: true });
    await symlink('/../../../../etc/shadow-not-here', join(evil, 'etc/passwd'));
    // The link is resolved inside `evil`: nothing is found, so a name cannot be resolved.
    await expect(resolveUser(evil, 'root')).rejects.toThrow(/unable to find user root/);
    expect(await resolveUser(evil, '0')).toMatchObject({ uid: 0, gid: 0 });
  });
});

describe('generated config.json', () => {
  it('passes the OCI runtime schema for a range of options', async () => {
    const variants: Partial<SpecOptions>[] = [
      {},
      { user: 'app', readOnly: true, network: 'host', env: ['X=1'], args: ['echo'] },
      { memory: 1 << 26, cpus: 1.5, pidsLimit: 64 },
      { binds: [{ source: '/tmp', destination: '/data', readonly: true }], etcFiles: { hosts: '/tmp/h' } },
      { idMappings: rootlessMappings({ user: 'u', uid: 1000, gid: 1000, subuid: 'u:100000:65536\n', subgid: 'u:100000:65536\n' }) },
      { seccomp: false, hostname: 'h' },
      { ulimits: [parseUlimit('core=-1'), parseUlimit('stack=8192:-1')] },
    ];
    for (const v of variants) {
      const { spec } = await generateSpec(image({ WorkingDir: '/srv/app' }), rootfs, { ...base, ...v });
      expect(runtimeConfigErrors(JSON.parse(specJson(spec))), JSON.stringify(v)).toEqual([]);
    }
  });

  it("has Podman's mounts, masked and read-only paths, 11 capabilities for root and none for others", async () => {
    const { spec } = await generateSpec(image(), rootfs, base);
    expect(spec.mounts.map((m) => m.destination)).toEqual(['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup']);
    expect(spec.linux.maskedPaths).toContain('/proc/kcore');
    expect(spec.linux.readonlyPaths).toContain('/proc/sys');
    expect(spec.process.capabilities.effective).toHaveLength(11);
    expect(spec.process.noNewPrivileges).toBe(true);
    expect(spec.linux.seccomp?.syscalls[0]?.names).toContain('keyctl');
    expect(spec.linux.namespaces.map((n) => n.type)).toEqual(['pid', 'ipc', 'uts', 'mount', 'network']);
    const app = (await generateSpec(image(), rootfs, { ...base, user: 'app' })).spec;
    expect(app.process.capabilities).toEqual({ bounding: [...DEFAULT_CAPABILITIES], effective: [], inheritable: [], permitted: [], ambient: [] });
    expect(app.process.user).toEqual({ uid: 1000, gid: 1000, umask: 0o022, additionalGids: [10, 29] });
    expect(app.process.env).toContain('HOME=/home/app');
  });

  it("never asks for rlimits above the caller's hard limits", async () => {
    const { spec } = await generateSpec(image(), rootfs, { ...base, callerLimits: { nofile: 20000, nproc: 5000 } });
    expect(spec.process.rlimits).toEqual([
      { type: 'RLIMIT_NOFILE', hard: 20000, soft: 20000 },
      { type: 'RLIMIT_NPROC', hard: 5000, soft: 5000 },
    ]);
    const big = (await generateSpec(image(), rootfs, { ...base, callerLimits: { nofile: 2 ** 40, nproc: 2 ** 40 } })).spec;
    expect(big.process.rlimits.map((r) => r.hard)).toEqual([1_048_576, 4_194_304]);
  });

  it('creates the image WorkingDir when missing; --network host keeps the host namespace; userns when mapped', async () => {
    const { spec } = await generateSpec(image({ WorkingDir: '/opt/work' }), rootfs, { ...base, network: 'host' });
    expect(spec.process.cwd).toBe('/opt/work');
    expect((await stat(join(rootfs, 'opt/work'))).isDirectory()).toBe(true);
    expect(spec.linux.namespaces.map((n) => n.type)).not.toContain('network');
    const maps = rootlessMappings({ user: 'u', uid: 1000, gid: 1001, subuid: 'other:1:2\nu:100000:65536\n', subgid: '1001:200000:1000\n' });
    expect(maps.uidMappings).toEqual([
      { containerID: 0, hostID: 1000, size: 1 },
      { containerID: 1, hostID: 100000, size: 65536 },
    ]);
    expect(maps.gidMappings).toEqual([
      { containerID: 0, hostID: 1001, size: 1 },
      { containerID: 1, hostID: 200000, size: 1000 },
    ]);
    const userns = (await generateSpec(image(), rootfs, { ...base, idMappings: maps })).spec;
    expect(userns.linux.namespaces.map((n) => n.type)).toContain('user');
    expect(() => rootlessMappings({ user: 'u', uid: 1, gid: 1, subuid: '', subgid: '' })).toThrow(/no ranges for u in \/etc\/subuid/);
  });

  it('sets cgroup limits when controllers are available and warns when they are not', async () => {
    const ok = await generateSpec(image(), rootfs, { ...base, memory: 1000, cpus: 0.5, pidsLimit: 9 });
    expect(ok.spec.linux.resources).toMatchObject({ memory: { limit: 1000 }, cpu: { quota: 50000, period: 100000 }, pids: { limit: 9 } });
    expect(ok.warnings).toEqual([]);
    const none = await generateSpec(image(), rootfs, { ...base, memory: 1000, pidsLimit: 9, controllers: new Set() });
    expect(none.spec.linux.resources.memory).toBeUndefined();
    expect(none.warnings).toHaveLength(2);
    expect(none.warnings[0]).toMatch(/memory cgroup controller is not delegated/);
  });
});

describe('small pieces', () => {
  it('chain IDs follow the image spec', () => {
    const d = ['sha256:' + 'a'.repeat(64), 'sha256:' + 'b'.repeat(64), 'sha256:' + 'c'.repeat(64)];
    const c1 = 'sha256:' + createHash('sha256').update(`${d[0]} ${d[1]}`).digest('hex');
    const c2 = 'sha256:' + createHash('sha256').update(`${c1} ${d[2]}`).digest('hex');
    expect(chainIds(d)).toEqual([d[0], c1, c2]);
  });

  it('normalises image names for the store', () => {
    expect(normaliseImageName('busybox').storeName).toBe('docker.io/library/busybox:latest');
    expect(normaliseImageName('docker://quay.io/a/b:1').storeName).toBe('quay.io/a/b:1');
    expect(normaliseImageName('oci:/tmp/My Layout:v1').storeName).toBe('localhost/my-layout:v1');
    expect(normaliseImageName('localhost/my-layout:v1').storeName).toBe('localhost/my-layout:v1');
  });

  it('reads hard limits from /proc/self/limits text', () => {
    const text =
      'Limit                     Soft Limit           Hard Limit           Units\nMax processes             96364                96364                processes\nMax open files            1024                 20000                files\n';
    expect(parseProcLimits(text)).toEqual({ nofile: 20000, nproc: 96364 });
  });

  it('tells cgroup v1, v2 and hybrid hosts apart', () => {
    const line = (mp: string, fs: string): string => `30 23 0:26 / ${mp} rw,nosuid shared:9 - ${fs} ${fs} rw`;
    expect(cgroupMode([line('/sys/fs/cgroup', 'cgroup2')].join('\n'))).toBe('v2');
    expect(cgroupMode([line('/sys/fs/cgroup/memory', 'cgroup'), line('/sys/fs/cgroup/unified', 'cgroup2')].join('\n'))).toBe('hybrid');
    expect(cgroupMode([line('/sys/fs/cgroup/memory', 'cgroup')].join('\n'))).toBe('v1');
  });

  it('refuses crun on a hybrid host before running anything, and classifies start failures', async () => {
    await expect(ociRuntime('crun', { cgroupMode: 'hybrid' }).check()).rejects.toThrow(/crun cannot run here: .*use --runtime runc/);
    expect(() => ociRuntime('youki')).toThrow(/unknown OCI runtime/);
    expect(classifyStartFailure('runc run failed: unable to start container process: exec: "x": executable file not found in $PATH')).toBe(127);
    expect(classifyStartFailure('runc run failed: unable to start container process: exec: "/etc": permission denied')).toBe(126);
    expect(classifyStartFailure('')).toBeUndefined();
  });

  it('writes k8s-file records, splitting long lines into P records', async () => {
    const path = join(dir, 'ctr.log');
    const log = new K8sFileLog(path);
    log.write('stdout', 'a\nb');
    log.write('stderr', 'err\n');
    log.write('stdout', 'c\n' + 'x'.repeat(MAX_LOG_LINE + 5) + '\nlast');
    await log.close();
    const recs = parseK8sLog(await readFile(path, 'utf8'));
    expect(recs.map((r) => [r.stream, r.tag, r.text.length > 20 ? r.text.length : r.text])).toEqual([
      ['stdout', 'F', 'a'],
      ['stderr', 'F', 'err'],
      ['stdout', 'F', 'bc'],
      ['stdout', 'P', MAX_LOG_LINE],
      ['stdout', 'F', 'xxxxx'],
      ['stdout', 'P', 'last'],
    ]);
  });

  it('re-executes a rootless caller through unshare with its whole subid range', () => {
    expect(reexecCommand('/usr/bin/node', ['--no-warnings'], ['/usr/bin/node', '/opt/stevedore.js', 'run', 'img'])).toEqual({
      cmd: 'unshare',
      args: [
        '--user',
        '--map-root-user',
        '--map-auto',
        '--mount',
        '--propagation',
        'private',
        '--',
        '/usr/bin/node',
        '--no-warnings',
        '/opt/stevedore.js',
        'run',
        'img',
      ],
    });
  });

  it('parses run flags: memory sizes and volumes', () => {
    expect(parseMemory('256m')).toBe(256 * 1024 * 1024);
    expect(parseMemory('1g')).toBe(1024 ** 3);
    expect(parseMemory('4096')).toBe(4096);
    expect(() => parseMemory('lots')).toThrow(/invalid size/);
    expect(parseVolume('/a:/b:ro')).toEqual({ source: '/a', destination: '/b', readonly: true });
    expect(() => parseVolume('named:/b')).toThrow(/named volumes/);
    expect(() => parseVolume('/a:rel')).toThrow(/absolute/);
    expect(parseIdMap('--uidmap', '0:100000:65536')).toEqual({ containerID: 0, hostID: 100000, size: 65536 });
    expect(() => parseIdMap('--uidmap', '0:1')).toThrow(/CONTAINER_ID:HOST_ID:SIZE/);
  });
});
