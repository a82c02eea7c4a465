/**
 * The pure pieces behind run's podman flags and behaviours: --ulimit parsing, capability sets,
 * the passwd/group entries of a user the image does not name, a ContainerRun's declared ports, and
 * what generateSpec makes of them (checked against real runs in test/cli/run-podman-behaviours).
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_CAPABILITIES, callerBoundingSet, capabilitySet } from '../../src/runtime/capabilities.js';
import { findInit } from '../../src/runtime/init.js';
import { portMappings } from '../../src/runtime/network/ports.js';
import { DEFAULT_CAPABILITIES, generateSpec, specJson, VolumeSourceMissingError } from '../../src/runtime/spec.js';
import { parseUlimit } from '../../src/runtime/ulimits.js';
import { resolveUser, userFiles } from '../../src/runtime/users.js';
import { runtimeConfigErrors } from './runtime-schema.js';

let dir: string;
let rootfs: string;
const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
const GROUP = 'root:x:0:\nnobody:x:65534:\n';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stevedore-run-options-'));
  rootfs = join(dir, 'bundle', 'rootfs');
  await mkdir(join(rootfs, 'etc'), { recursive: true });
  await mkdir(join(rootfs, 'tmp'));
  await writeFile(join(rootfs, 'etc', 'passwd'), PASSWD);
  await writeFile(join(rootfs, 'etc', 'group'), GROUP);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const image = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: { Cmd: ['/bin/sh'] } } as never;
const base = { id: 'a'.repeat(64), seccomp: false as const, callerLimits: { nofile: 4096, nproc: 4096 }, rootless: false };

describe('--ulimit', () => {
  it("parses NAME=SOFT[:HARD] with podman's names", () => {
    expect(parseUlimit('nofile=100:200')).toEqual({ type: 'RLIMIT_NOFILE', soft: 100, hard: 200 });
    expect(parseUlimit('stack=8192')).toEqual({ type: 'RLIMIT_STACK', soft: 8192, hard: 8192 });
    expect(parseUlimit('as=1')).toMatchObject({ type: 'RLIMIT_AS' });
  });
  it('takes -1 or unlimited for no limit, soft and/or hard', () => {
    expect(parseUlimit('core=-1')).toEqual({ type: 'RLIMIT_CORE', soft: 'unlimited', hard: 'unlimited' });
    expect(parseUlimit('core=unlimited')).toEqual({ type: 'RLIMIT_CORE', soft: 'unlimited', hard: 'unlimited' });
    expect(parseUlimit('stack=-1:unlimited')).toEqual({ type: 'RLIMIT_STACK', soft: 'unlimited', hard: 'unlimited' });
    expect(parseUlimit('core=100:-1')).toEqual({ type: 'RLIMIT_CORE', soft: 100, hard: 'unlimited' });
  });
  it.each([
    ['bogus=1', /unknown limit "bogus"/],
    ['nofile', /expected NAME=SOFT\[:HARD\]/],
    ['nofile=200:100', /--ulimit nofile=200:100: the soft limit \(200\) exceeds the hard limit \(100\)/],
    ['core=-1:100', /--ulimit core=-1:100: the soft limit \(unlimited\) exceeds the hard limit \(100\)/],
    ['core=-2', /--ulimit core=-2: "-2" is negative; the only negative limit is -1 \(unlimited\)/],
    ['core=0:-5', /"-5" is negative/],
    ['core=-1.5', /"-1.5" is not a number/],
    ['core=Unlimited', /"Unlimited" is not a number/],
    ['nofile=1e3', /"1e3" is not a number/],
    ['nofile=99999999999999999999', /is not a number/],
  ])('refuses %s', (value, message) => {
    expect(() => parseUlimit(value)).toThrow(message);
  });
  it('replaces the default of its type in the spec', async () => {
    const { spec } = await generateSpec(image, rootfs, { ...base, ulimits: [parseUlimit('nofile=100:200'), parseUlimit('core=0')] });
    expect(spec.process.rlimits).toEqual([
      { type: 'RLIMIT_NOFILE', soft: 100, hard: 200 },
      { type: 'RLIMIT_NPROC', soft: 4096, hard: 4096 },
      { type: 'RLIMIT_CORE', soft: 0, hard: 0 },
    ]);
  });
  it('writes unlimited as the exact uint64 RLIM_INFINITY in a config.json that passes the runtime schema', async () => {
    const { spec } = await generateSpec(image, rootfs, { ...base, ulimits: [parseUlimit('core=-1'), parseUlimit('stack=8192:unlimited')] });
    expect(spec.process.rlimits.slice(2)).toEqual([
      { type: 'RLIMIT_CORE', hard: 2n ** 64n - 1n, soft: 2n ** 64n - 1n },
      { type: 'RLIMIT_STACK', hard: 2n ** 64n - 1n, soft: 8192 },
    ]);
    const text = specJson(spec);
    expect(runtimeConfigErrors(JSON.parse(text))).toEqual([]);
    // Each value's source text: the exact literal, not 18446744073709552000 (JSON.stringify of the nearest number).
    const source = (_key: string, value: unknown, ctx?: { source?: string }): unknown => (typeof value === 'number' ? ctx?.source : value);
    expect(JSON.parse(text, source).process.rlimits.slice(2)).toEqual([
      { type: 'RLIMIT_CORE', hard: '18446744073709551615', soft: '18446744073709551615' },
      { type: 'RLIMIT_STACK', hard: '18446744073709551615', soft: '8192' },
    ]);
  });
});

describe('capabilities', () => {
  const all = (): string[] => [...ALL_CAPABILITIES];
  it('root: the defaults minus dropped plus added, in every set but inheritable and ambient', () => {
    const c = capabilitySet(DEFAULT_CAPABILITIES, { add: ['net_admin'], drop: ['CAP_CHOWN'] }, true, all);
    expect(c.bounding).toEqual([...DEFAULT_CAPABILITIES.filter((x) => x !== 'CAP_CHOWN'), 'CAP_NET_ADMIN']);
    expect(c.effective).toEqual(c.bounding);
    expect(c.permitted).toEqual(c.bounding);
    expect([c.inheritable, c.ambient]).toEqual([[], []]);
  });
  it('another user: only the added ones, ambient too', () => {
    const c = capabilitySet(DEFAULT_CAPABILITIES, { add: ['NET_ADMIN'] }, false, all);
    expect(c.bounding).toContain('CAP_CHOWN');
    expect([c.effective, c.permitted, c.inheritable, c.ambient]).toEqual([['CAP_NET_ADMIN'], ['CAP_NET_ADMIN'], ['CAP_NET_ADMIN'], ['CAP_NET_ADMIN']]);
    expect(capabilitySet(DEFAULT_CAPABILITIES, undefined, false, all).effective).toEqual([]);
  });
  it('ALL: drop everything, or add what this process holds', () => {
    expect(capabilitySet(DEFAULT_CAPABILITIES, { drop: ['all'], add: ['kill'] }, true, all).bounding).toEqual(['CAP_KILL']);
    expect(capabilitySet(DEFAULT_CAPABILITIES, { add: ['ALL'] }, true, () => ['CAP_CHOWN', 'CAP_SYS_ADMIN']).bounding).toEqual([
      ...DEFAULT_CAPABILITIES,
      'CAP_SYS_ADMIN',
    ]);
  });
  it('refuses an unknown name, naming it', () => {
    expect(() => capabilitySet(DEFAULT_CAPABILITIES, { add: ['nosuch'] }, true, all)).toThrow(/--cap-add nosuch: unknown capability "CAP_NOSUCH"/);
  });
  it('reads the bounding set from /proc/self/status', () => {
    expect(callerBoundingSet('Name:\tx\nCapBnd:\t0000000000000021\n')).toEqual(['CAP_CHOWN', 'CAP_KILL']);
  });
});

describe('user entries', () => {
  it('adds passwd and group lines for an unknown numeric user, as podman', async () => {
    const u = await resolveUser(rootfs, '1234');
    expect(await userFiles(rootfs, '1234', u, '/work')).toEqual({
      passwd: `${PASSWD}1234:*:1234:0:container user:/work:/bin/sh\n`,
      group: `${GROUP}1234:x:1234:1234\n`,
    });
    const g = await resolveUser(rootfs, '1234:5678');
    expect(await userFiles(rootfs, '1234:5678', g, '/')).toEqual({
      passwd: `${PASSWD}1234:*:1234:5678:container user:/:/bin/sh\n`,
      group: `${GROUP}5678:x:5678:1234\n`,
    });
  });
  it('adds nothing for users and groups the image has, or no user', async () => {
    for (const spec of ['nobody', '0', 'nobody:root', '1234:0', '']) {
      const files = await userFiles(rootfs, spec, await resolveUser(rootfs, spec), '/');
      if (spec === '1234:0') expect(files).toEqual({ passwd: `${PASSWD}1234:*:1234:0:container user:/:/bin/sh\n` });
      else expect(files, spec).toEqual({});
    }
  });
  it('generateSpec bind-mounts copies (the rootfs is unchanged), with HOME the workdir and the primary group added', async () => {
    const { spec } = await generateSpec(image, rootfs, { ...base, user: '1234', workdir: '/tmp', podmanDefaults: true });
    const passwd = spec.mounts.find((m) => m.destination === '/etc/passwd');
    expect(passwd?.source).toBe(join(dir, 'bundle', 'passwd'));
    expect(await readFile(passwd!.source!, 'utf8')).toContain('1234:*:1234:0:container user:/tmp:/bin/sh');
    expect(await readFile(join(rootfs, 'etc', 'passwd'), 'utf8')).toBe(PASSWD);
    expect(spec.process.env).toEqual(expect.arrayContaining(['HOME=/tmp', 'TERM=xterm', 'container=stevedore']));
    expect(spec.process.user.additionalGids).toEqual([0]);
    expect(spec.mounts.map((m) => m.destination)).toContain('/run/.containerenv');
    // Without podmanDefaults (the builder, the agent): none of it.
    const plain = (await generateSpec(image, rootfs, { ...base, user: '1234', workdir: '/tmp' })).spec;
    expect(plain.mounts.map((m) => m.destination)).not.toContain('/etc/passwd');
    expect(plain.process.env.some((e) => e.startsWith('container='))).toBe(false);
    expect(plain.process.user.additionalGids).toBeUndefined();
  });
});

describe('mounts', () => {
  it('refuses a missing volume source, naming it', async () => {
    const missing = join(dir, 'nope');
    await expect(generateSpec(image, rootfs, { ...base, binds: [{ source: missing, destination: '/data' }] })).rejects.toThrow(VolumeSourceMissingError);
    await expect(generateSpec(image, rootfs, { ...base, binds: [{ source: missing, destination: '/data' }] })).rejects.toThrow(missing);
  });
  it('accepts a workdir at or below a volume that the image lacks', async () => {
    const { spec } = await generateSpec(image, rootfs, { ...base, binds: [{ source: dir, destination: '/data' }], workdir: '/data/sub' });
    expect(spec.process.cwd).toBe('/data/sub');
    await expect(generateSpec(image, rootfs, { ...base, workdir: '/data2' })).rejects.toThrow(/workdir "\/data2" does not exist/);
  });
  it('--read-only: tmpfs on /tmp, /run, /var/tmp unless turned off or mounted by the user', async () => {
    const tmpfs = async (o: object): Promise<string[]> =>
      (await generateSpec(image, rootfs, { ...base, readOnly: true, ...o })).spec.mounts
        .filter((m) => m.type === 'tmpfs' && ['/tmp', '/run', '/var/tmp'].includes(m.destination))
        .map((m) => `${m.destination} ${m.options?.join(',')}`);
    expect(await tmpfs({ readOnlyTmpfs: true })).toEqual([
      '/tmp rw,rprivate,nosuid,nodev,tmpcopyup',
      '/run rw,rprivate,nosuid,nodev,tmpcopyup',
      '/var/tmp rw,rprivate,nosuid,nodev,tmpcopyup',
    ]);
    expect(await tmpfs({ readOnlyTmpfs: false })).toEqual([]);
    expect(await tmpfs({ readOnlyTmpfs: true, tmpfs: ['/tmp:size=1m'] })).toEqual([
      '/run rw,rprivate,nosuid,nodev,tmpcopyup',
      '/var/tmp rw,rprivate,nosuid,nodev,tmpcopyup',
      '/tmp rw,noexec,nosuid,nodev,size=1m',
    ]);
  });
  it('--init: the binary bound read-only and run in front of the command', async () => {
    const { spec } = await generateSpec(image, rootfs, { ...base, init: '/usr/bin/catatonit', args: ['echo', 'hi'] });
    expect(spec.process.args).toEqual(['/run/stevedore-init', '--', 'echo', 'hi']);
    expect(spec.mounts.find((m) => m.destination === '/run/stevedore-init')).toMatchObject({ type: 'bind', source: '/usr/bin/catatonit' });
    await expect(findInit(join(dir, 'none'))).rejects.toThrow(/--init-path .*: not an executable file/);
    const bin = join(dir, 'bin');
    await mkdir(bin);
    await writeFile(join(bin, 'catatonit'), '', { mode: 0o755 });
    expect(await findInit(undefined, `${join(dir, 'empty')}:${bin}`)).toBe(join(bin, 'catatonit'));
  });
});

describe('ContainerRun ports', () => {
  it('become run -p mappings, on 127.0.0.1 unless said otherwise', () => {
    expect(
      portMappings([
        { containerPort: 8080, hostPort: 18080 },
        { containerPort: 53, hostPort: 5353, hostIP: '::1', protocol: 'UDP' },
      ]),
    ).toEqual([
      { hostIp: '127.0.0.1', hostPort: 18080, containerPort: 8080, protocol: 'tcp' },
      { hostIp: '::1', hostPort: 5353, containerPort: 53, protocol: 'udp' },
    ]);
    expect(portMappings(undefined)).toEqual([]);
    expect(() => portMappings([{ containerPort: 80, hostPort: 80, hostIP: '999.1.1.1' }])).toThrow(/"999\.1\.1\.1" is not an IP address/);
  });
});
