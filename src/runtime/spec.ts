import { chown, lstat, mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ImageConfig } from '../oci/config.js';
import { InvalidInputError, StevedoreError } from '../util/errors.js';
import { availableControllers, cgroupMode, inUserNamespace, singleIdNamespace, type CgroupMode, type ResourceController } from './cgroups.js';
import { callerLimits, type CallerLimits } from './limits.js';
import { defaultSeccompProfile, type SeccompProfile } from './seccomp.js';
// The resolver alone: the unpack barrel would load tar-stream, which running a stored image never needs.
import { resolveInRoot } from './unpack/rootpath.js';
import type { IdMapping } from './unpack/index.js';
import { resolveUser, userFiles } from './users.js';
import { capabilitySet, type CapabilityChanges } from './capabilities.js';
import { mergeRlimits, rlimitSpecValue, type Rlimit } from './ulimits.js';

/** The subset of the OCI runtime spec's config.json that Stevedore writes. */
export interface RuntimeSpec {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number; umask?: number; additionalGids?: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: Record<'bounding' | 'effective' | 'inheritable' | 'permitted' | 'ambient', string[]>;
    /** uint64 values: a bigint for RLIM_INFINITY (unlimited), beyond a number's exact range. */
    rlimits: { type: string; hard: number | bigint; soft: number | bigint }[];
    noNewPrivileges: boolean;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: RuntimeMount[];
  linux: {
    namespaces: { type: string; path?: string }[];
    uidMappings?: IdMapping[];
    gidMappings?: IdMapping[];
    cgroupsPath?: string;
    resources: {
      devices: { allow: boolean; access: string }[];
      memory?: { limit: number; swap?: number };
      cpu?: { quota: number; period: number };
      pids?: { limit: number };
    };
    seccomp?: SeccompProfile;
    maskedPaths: string[];
    readonlyPaths: string[];
  };
  annotations?: Record<string, string>;
}

// JSON.rawJSON (Node >= 21; not yet in TypeScript's lib): JSON.stringify writes its text as it is.
const rawJSON = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;

/**
 * The spec as the runtime's config.json. A bigint (RLIM_INFINITY in `process.rlimits`) is written
 * as the exact integer literal, which a JSON number from JavaScript cannot be; the runtime reads
 * it into its uint64.
 */
export function specJson(spec: RuntimeSpec): string {
  return JSON.stringify(spec, (_key, value: unknown) => (typeof value === 'bigint' ? rawJSON(value.toString()) : value), 2);
}

export interface RuntimeMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

/** A tmpfs at `destination` with these mount options (after rw,noexec,nosuid,nodev), given as a list: no option is parsed out of a path. */
export interface TmpfsMount {
  destination: string;
  options: string[];
}

export interface BindMount {
  source: string;
  destination: string;
  readonly?: boolean;
  /**
   * Further mount flags (nosuid, nodev, noexec). A source that is itself a mount with those flags
   * needs them repeated: in a user namespace they are locked, and a read-only remount without them fails.
   */
  options?: string[];
}

export interface SpecOptions {
  /** Replaces the image's Cmd. */
  args?: string[];
  /** Replaces the image's Entrypoint and clears its Cmd; `''` or `[]` clears it. */
  entrypoint?: string | string[];
  /** `KEY=VALUE` overrides, applied over the image's Env. */
  env?: string[];
  user?: string;
  workdir?: string;
  readOnly?: boolean;
  hostname?: string;
  network?: 'none' | 'host';
  /** A network namespace made beforehand (a private network): joined instead of a new, empty one. */
  netnsPath?: string;
  binds?: BindMount[];
  /** `--tmpfs /path[:options]`: a tmpfs at each path (Podman's default options: rw,noexec,nosuid,nodev). */
  tmpfs?: string[];
  /** Tmpfs mounts given structurally (the agent's emptyDir medium Memory). */
  tmpfsMounts?: TmpfsMount[];
  /** Files the bundle provides for /etc/hosts, /etc/hostname, /etc/resolv.conf (bind-mounted). */
  etcFiles?: { hosts?: string; hostname?: string; resolvConf?: string };
  memory?: number;
  /** CPUs as a fraction (1.5 = 150 ms per 100 ms). */
  cpus?: number;
  pidsLimit?: number;
  /** Container id: names the cgroup. */
  id: string;
  /** User-namespace mappings (rootless); a user namespace is added when given. */
  idMappings?: { uidMappings: IdMapping[]; gidMappings: IdMapping[] };
  seccomp?: SeccompProfile | false;
  /** For tests: the limits and cgroup facts of the caller. */
  callerLimits?: CallerLimits;
  cgroupMode?: CgroupMode;
  controllers?: Set<ResourceController>;
  /** Whether the engine itself runs rootless (in a user namespace or as non-root): no cgroup of its own. */
  rootless?: boolean;
  /** Check the working directory in the rootfs, creating the image's WorkingDir when missing (default true). */
  createWorkdir?: boolean;
  /**
   * What `podman run` adds to every container, which the builder's RUN steps and the agent do not
   * want (default false): a passwd/group entry for a user the image does not name (bind-mounted
   * copies of its files, the rootfs is not changed), the primary group among the supplementary
   * groups of an explicit user, `container=stevedore` and `TERM=xterm` in the environment, and an
   * empty /run/.containerenv.
   */
  podmanDefaults?: boolean;
  /** With `readOnly`: writable tmpfs on /tmp, /run and /var/tmp (podman's `--read-only-tmpfs`, default there true; here false). */
  readOnlyTmpfs?: boolean;
  /** `--cap-add`, `--cap-drop`: changes to the default capability set. */
  capabilities?: CapabilityChanges;
  /** `--ulimit`: replaces the default of the same type. */
  ulimits?: Rlimit[];
  /**
   * `-t`: the process gets a terminal. In the foreground the runtime makes the pseudo-terminal and
   * copies it to its own stdout (and its stdin to it), so stdout and stderr arrive merged, as with podman.
   */
  terminal?: boolean;
  /**
   * `--init`: this host binary (catatonit, as podman's) is bind-mounted read-only at /run/stevedore-init
   * and runs as PID 1 in front of the command, forwarding signals and reaping zombies.
   */
  init?: string;
}

export interface GeneratedSpec {
  spec: RuntimeSpec;
  warnings: string[];
  /** The container's command as `ps` shows it: the process's args without an `init` in front. */
  command: string[];
}

export class NoCommandError extends StevedoreError {
  constructor() {
    super('NO_COMMAND', 'no command or entrypoint provided, and no CMD or ENTRYPOINT from image');
  }
}

/** An explicit working directory (`-w`) that the image does not have: Podman refuses it (126). */
export class WorkdirNotFoundError extends StevedoreError {
  constructor(dir: string) {
    super('WORKDIR_NOT_FOUND', `workdir "${dir}" does not exist in the container`);
  }
}

/** A `-v` source that does not exist: podman refuses the run (125) instead of letting the runtime fail. */
export class VolumeSourceMissingError extends StevedoreError {
  constructor(source: string, destination: string) {
    super('VOLUME_SOURCE_MISSING', `volume source "${source}" (mounted at ${destination}) does not exist on the host`);
  }
}

/** The value of the `container` variable a container gets with `podmanDefaults` (podman sets `podman`); see docs/podman-compatibility.md. */
export const CONTAINER_ENV_VALUE = 'stevedore';

/** Where `init` is mounted in the container. */
export const INIT_PATH = '/run/stevedore-init';

/** Where podman mounts tmpfs on a `--read-only` root. */
export const READ_ONLY_TMPFS_PATHS: readonly string[] = ['/tmp', '/run', '/var/tmp'];

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Podman's default capability set (containers.conf): 11 capabilities. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_NET_BIND_SERVICE',
  'CAP_SETFCAP',
  'CAP_SETGID',
  'CAP_SETPCAP',
  'CAP_SETUID',
  'CAP_SYS_CHROOT',
];

export const MASKED_PATHS: readonly string[] = [
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/fs/selinux',
  '/sys/dev/block',
];

export const READONLY_PATHS: readonly string[] = ['/proc/asound', '/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/**
 * Podman's mounts of a default container. Without the tty group (gid 5) in the user namespace
 * (a one-id namespace), devpts cannot be mounted with `gid=5`: leave it out, as rootless Podman does.
 */
export function defaultMounts(opts: { ttyGroup?: boolean } = {}): RuntimeMount[] {
  const ptsGroup = opts.ttyGroup === false ? [] : ['gid=5'];
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', ...ptsGroup] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['rprivate', 'nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
  ];
}

/** Docker's rule: `--entrypoint` replaces Entrypoint and drops Cmd; args replace Cmd. */
export function commandLine(image: ImageConfig['config'], opts: Pick<SpecOptions, 'args' | 'entrypoint'>): string[] {
  let entrypoint = image?.Entrypoint ?? [];
  let cmd = image?.Cmd ?? [];
  if (opts.entrypoint !== undefined) {
    entrypoint = typeof opts.entrypoint === 'string' ? parseEntrypoint(opts.entrypoint) : opts.entrypoint;
    cmd = [];
  }
  if (opts.args && opts.args.length > 0) cmd = opts.args;
  const argv = [...entrypoint, ...cmd];
  if (argv.length === 0) throw new NoCommandError();
  return argv;
}

/** `--entrypoint` takes a JSON array or one string (a single word, as Podman). */
export function parseEntrypoint(value: string): string[] {
  if (value === '') return [];
  if (value.trimStart().startsWith('[')) {
    const parsed: unknown = JSON.parse(value);
    if (!Array.isArray(parsed) || !parsed.every((s) => typeof s === 'string')) throw new InvalidInputError(`--entrypoint: expected a JSON array of strings`);
    return parsed as string[];
  }
  return [value];
}

/** Image Env, then defaults (PATH, HOSTNAME, HOME), then the caller's overrides; last wins, order kept. */
export function mergeEnv(imageEnv: readonly string[] | undefined, overrides: readonly string[] | undefined, defaults: Record<string, string>): string[] {
  const map = new Map<string, string>();
  const put = (kv: string): void => {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new InvalidInputError(`environment entry "${kv}" is not KEY=VALUE`);
    map.set(kv.slice(0, eq), kv.slice(eq + 1));
  };
  put(DEFAULT_PATH);
  for (const kv of imageEnv ?? []) put(kv);
  for (const [k, v] of Object.entries(defaults)) if (!map.has(k)) map.set(k, v);
  for (const kv of overrides ?? []) put(kv);
  return [...map].map(([k, v]) => `${k}=${v}`);
}

function rlimits(limits: CallerLimits, overrides: readonly Rlimit[] = []): RuntimeSpec['process']['rlimits'] {
  // Podman's defaults (1048576 files, 4194304 processes), never above what the caller may grant.
  const nofile = Math.min(1_048_576, limits.nofile);
  const nproc = Math.min(4_194_304, limits.nproc);
  return mergeRlimits(
    [
      { type: 'RLIMIT_NOFILE', hard: nofile, soft: nofile },
      { type: 'RLIMIT_NPROC', hard: nproc, soft: nproc },
    ],
    overrides,
  ).map((r) => ({ type: r.type, hard: rlimitSpecValue(r.hard), soft: rlimitSpecValue(r.soft) }));
}

/** Whether `path` is a mount destination of the container or below one (its existence is then the mount's business). */
function underMount(path: string, destinations: readonly string[]): boolean {
  const norm = (p: string): string => p.replace(/\/+$/, '') || '/';
  const p = norm(path);
  return destinations.some((d) => {
    const m = norm(d);
    return p === m || p.startsWith(m === '/' ? '/' : `${m}/`);
  });
}

/**
 * Makes sure the working directory exists inside the rootfs (symlinks resolved inside it). The
 * image's WorkingDir is created when missing, owned by the user; an explicit one must exist, as
 * in Podman.
 */
function toHost(maps: readonly IdMapping[] | undefined, id: number): number {
  if (!maps) return id;
  const m = maps.find((x) => x.containerID <= id && id < x.containerID + x.size);
  return m ? m.hostID + (id - m.containerID) : id;
}

async function ensureWorkdir(rootfs: string, cwd: string, uid: number, gid: number, explicit: boolean): Promise<void> {
  const host = await resolveInRoot(rootfs, cwd);
  try {
    await lstat(host);
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (explicit) throw new WorkdirNotFoundError(cwd);
  await mkdir(host, { recursive: true, mode: 0o755 });
  if (process.geteuid?.() === 0) await chown(host, uid, gid).catch(() => undefined);
}

/**
 * The OCI runtime config.json for a container of `image` on `rootfs` (the bundle's `rootfs`),
 * with Docker's and Podman's semantics. Reads (and may create WorkingDir in) the rootfs.
 */
export async function generateSpec(image: ImageConfig, rootfs: string, opts: SpecOptions): Promise<GeneratedSpec> {
  const warnings: string[] = [];
  const cfg = image.config ?? {};
  const command = commandLine(cfg, opts);
  const args = opts.init ? [INIT_PATH, '--', ...command] : command;
  const userSpec = opts.user ?? cfg.User;
  const user = await resolveUser(rootfs, userSpec);
  const cwd = opts.workdir ?? (cfg.WorkingDir || '/');
  if (!cwd.startsWith('/')) throw new InvalidInputError(`working directory "${cwd}" must be an absolute path`);
  for (const b of opts.binds ?? []) {
    if (!b.destination.startsWith('/')) throw new InvalidInputError(`volume destination "${b.destination}" must be an absolute path`);
    await stat(b.source).catch((err: NodeJS.ErrnoException) => {
      throw err.code === 'ENOENT' || err.code === 'ENOTDIR' ? new VolumeSourceMissingError(b.source, b.destination) : err;
    });
  }
  const readOnlyTmpfs = opts.readOnly === true && opts.readOnlyTmpfs === true ? READ_ONLY_TMPFS_PATHS : [];
  const userDestinations = [
    ...(opts.binds ?? []).map((b) => b.destination),
    ...(opts.tmpfs ?? []).map((t) => t.split(':', 1)[0]!),
    ...(opts.tmpfsMounts ?? []).map((t) => t.destination),
  ];
  const mountDestinations = [...userDestinations, ...readOnlyTmpfs];
  // A working directory at or below a volume exists once the volume is mounted (the runtime creates the mount point).
  if (opts.createWorkdir !== false && !underMount(cwd, mountDestinations)) {
    await ensureWorkdir(
      rootfs,
      cwd,
      toHost(opts.idMappings?.uidMappings, user.uid),
      toHost(opts.idMappings?.gidMappings, user.gid),
      opts.workdir !== undefined,
    );
  }
  const hostname = opts.hostname ?? opts.id.slice(0, 12);
  const podman = opts.podmanDefaults === true;
  const files = podman ? await userFiles(rootfs, userSpec, user, cwd) : {};
  // A user podman adds has the working directory as its home.
  const home = files.passwd !== undefined ? cwd : user.home;
  const env = mergeEnv(cfg.Env, opts.env, { ...(podman ? { TERM: 'xterm', container: CONTAINER_ENV_VALUE } : {}), HOSTNAME: hostname, HOME: home });
  // Podman puts an explicit user's primary group among its supplementary groups (`id` shows `groups=`).
  const explicitUser = (userSpec ?? '').trim() !== '';
  const additionalGids = podman && explicitUser ? [user.gid, ...user.additionalGids.filter((g) => g !== user.gid)] : user.additionalGids;
  const caps = capabilitySet(DEFAULT_CAPABILITIES, opts.capabilities, user.uid === 0);

  let mounts = defaultMounts({ ttyGroup: opts.idMappings !== undefined || !singleIdNamespace() });
  const rootless = opts.rootless ?? (process.geteuid?.() !== 0 || inUserNamespace());
  // A private network made beforehand belongs to the engine's user namespace, not to a container's own (--uidmap, the agent's runs).
  const foreignNetns = opts.netnsPath !== undefined && opts.idMappings !== undefined;
  if (((rootless || opts.idMappings !== undefined) && opts.network === 'host') || foreignNetns) {
    // A user namespace may mount sysfs only with a network namespace it owns; with the host's
    // network, Podman binds the host's /sys (read-only) instead, cgroup tree included.
    mounts = mounts
      .filter((m) => m.destination !== '/sys/fs/cgroup')
      .map((m) =>
        m.destination === '/sys' ? { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] } : m,
      );
  }
  const etc = opts.etcFiles ?? {};
  for (const [dest, src] of [
    ['/etc/hosts', etc.hosts],
    ['/etc/hostname', etc.hostname],
    ['/etc/resolv.conf', etc.resolvConf],
  ] as const) {
    if (src) mounts.push({ destination: dest, type: 'bind', source: src, options: ['rbind', 'rprivate', 'nosuid', 'noexec', 'nodev'] });
  }
  // Podman's tmpfs on a read-only root: writable, exec allowed, the image's files copied up.
  for (const dest of readOnlyTmpfs) {
    if (!userDestinations.includes(dest))
      mounts.push({ destination: dest, type: 'tmpfs', source: 'tmpfs', options: ['rw', 'rprivate', 'nosuid', 'nodev', 'tmpcopyup'] });
  }
  if (podman) {
    // Files of the bundle (beside the rootfs): the image's files are never changed.
    const bundle = dirname(rootfs);
    const owned = { uid: toHost(opts.idMappings?.uidMappings, 0), gid: toHost(opts.idMappings?.gidMappings, 0) };
    const extra: [string, string, string][] = [['/run/.containerenv', join(bundle, 'containerenv'), '']];
    if (files.passwd !== undefined) extra.push(['/etc/passwd', join(bundle, 'passwd'), files.passwd]);
    if (files.group !== undefined) extra.push(['/etc/group', join(bundle, 'group'), files.group]);
    for (const [dest, src, text] of extra) {
      await writeFile(src, text, { mode: 0o644 });
      if (process.geteuid?.() === 0) await chown(src, owned.uid, owned.gid).catch(() => undefined);
      mounts.push({ destination: dest, type: 'bind', source: src, options: ['rbind', 'rprivate', 'nosuid', 'noexec', 'nodev'] });
    }
  }
  if (opts.init) mounts.push({ destination: INIT_PATH, type: 'bind', source: opts.init, options: ['bind', 'rprivate', 'ro', 'nosuid', 'nodev'] });
  for (const b of opts.binds ?? []) {
    mounts.push({ destination: b.destination, type: 'bind', source: b.source, options: ['rbind', 'rprivate', b.readonly ? 'ro' : 'rw', ...(b.options ?? [])] });
  }

  for (const t of opts.tmpfs ?? []) {
    const colon = t.indexOf(':');
    const dest = colon < 0 ? t : t.slice(0, colon);
    const extra =
      colon < 0
        ? []
        : t
            .slice(colon + 1)
            .split(',')
            .filter(Boolean);
    if (!dest.startsWith('/')) throw new InvalidInputError(`--tmpfs ${t}: the container path must be absolute`);
    mounts.push({ destination: dest, type: 'tmpfs', source: 'tmpfs', options: ['rw', 'noexec', 'nosuid', 'nodev', ...extra] });
  }

  for (const t of opts.tmpfsMounts ?? []) {
    if (!t.destination.startsWith('/')) throw new InvalidInputError(`tmpfs ${t.destination}: the container path must be absolute`);
    mounts.push({ destination: t.destination, type: 'tmpfs', source: 'tmpfs', options: ['rw', 'noexec', 'nosuid', 'nodev', ...t.options] });
  }

  const namespaces: RuntimeSpec['linux']['namespaces'] = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (opts.network !== 'host') namespaces.push({ type: 'network', ...(opts.netnsPath ? { path: opts.netnsPath } : {}) });
  if (opts.idMappings) namespaces.push({ type: 'user' });

  const resources: RuntimeSpec['linux']['resources'] = { devices: [{ allow: false, access: 'rwm' }] };
  const wanted: ResourceController[] = [];
  if (opts.memory !== undefined) wanted.push('memory');
  if (opts.cpus !== undefined) wanted.push('cpu');
  if (opts.pidsLimit !== undefined) wanted.push('pids');
  // The host's cgroup layout (a read of /proc/self/mountinfo) matters only when a limit is asked for.
  const mode = wanted.length > 0 ? (opts.cgroupMode ?? cgroupMode()) : undefined;
  const have = mode !== undefined ? (opts.controllers ?? availableControllers(mode)) : new Set<ResourceController>();
  for (const c of wanted) {
    if (!have.has(c)) {
      warnings.push(`the ${c} cgroup controller is not delegated to this user (cgroups ${mode}): the ${c} limit is ignored`);
      continue;
    }
    if (c === 'memory') resources.memory = { limit: opts.memory!, swap: opts.memory! };
    if (c === 'cpu') resources.cpu = { quota: Math.round(opts.cpus! * 100_000), period: 100_000 };
    if (c === 'pids') resources.pids = { limit: opts.pidsLimit! };
  }

  const seccomp = opts.seccomp === false ? undefined : (opts.seccomp ?? defaultSeccompProfile());
  const spec: RuntimeSpec = {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: opts.terminal === true,
      user: { uid: user.uid, gid: user.gid, umask: 0o022, ...(additionalGids.length > 0 ? { additionalGids } : {}) },
      args,
      env,
      cwd,
      capabilities: caps,
      rlimits: rlimits(opts.callerLimits ?? callerLimits(), opts.ulimits),
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: opts.readOnly ?? false },
    hostname,
    mounts,
    linux: {
      namespaces,
      ...(opts.idMappings ? { uidMappings: opts.idMappings.uidMappings, gidMappings: opts.idMappings.gidMappings } : {}),
      // Rootless, runc and crun skip a cgroup they cannot create only when none is named.
      ...((opts.rootless ?? (process.geteuid?.() !== 0 || inUserNamespace())) ? {} : { cgroupsPath: `/stevedore/${opts.id}` }),
      resources,
      ...(seccomp ? { seccomp } : {}),
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
    },
    annotations: { 'dev.stevedore.container.id': opts.id },
  };
  return { spec, warnings, command };
}
