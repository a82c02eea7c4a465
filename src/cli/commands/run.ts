import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { runContainer, type RunOptions, type RunResult } from '../../runtime/container.js';
import type { BindMount } from '../../runtime/spec.js';
import { NETWORK_MODES, parseAddHost, parseDns, parsePublish, type NetworkMode } from '../../runtime/network/index.js';
import { needsUserNamespace, reexecInUserNamespace } from '../../runtime/rootless.js';
import { ImageStore, type PullPolicy } from '../../runtime/store/index.js';
import type { IdMapping } from '../../runtime/unpack/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { findInit } from '../../runtime/init.js';
import { parseUlimit } from '../../runtime/ulimits.js';
import { exitWith } from '../exit-codes.js';
import { collect, parseBool, parsePositiveInt } from '../options.js';
import { signalOnInterrupt } from '../signals.js';
import { startFailureExitCode } from '../../runtime/lifecycle/exit-status.js';

/** podman run's status when --timeout ended the container. */
const EXIT_TIMEOUT = 255;

interface RunFlags {
  rm?: boolean;
  env?: string[];
  envFile?: string[];
  volume?: string[];
  tmpfs?: string[];
  workdir?: string;
  user?: string;
  entrypoint?: string;
  readOnly?: boolean;
  readOnlyTmpfs?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  ulimit?: string[];
  tlsVerify?: boolean;
  interactive?: boolean;
  tty?: boolean;
  init?: boolean;
  initPath?: string;
  network?: string;
  publish?: string[];
  dns?: string[];
  addHost?: string[];
  timeout?: number;
  runtime?: string;
  pull?: string;
  memory?: string;
  cpus?: string;
  pidsLimit?: number;
  name?: string;
  hostname?: string;
  root?: string;
  uidmap?: string[];
  detach?: boolean;
  gidmap?: string[];
  policy?: string;
}

/** Podman's `--uidmap CONTAINER:HOST:SIZE`. */
export function parseIdMap(flag: string, value: string): IdMapping {
  const m = /^(\d+):(\d+):(\d+)$/.exec(value);
  if (!m || Number(m[3]) < 1) throw new InvalidInputError(`${flag} ${value}: expected CONTAINER_ID:HOST_ID:SIZE`);
  return { containerID: Number(m[1]), hostID: Number(m[2]), size: Number(m[3]) };
}

/** `512m`, `1g`, `1048576`: bytes, with Docker's binary suffixes. */
export function parseMemory(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmg]?)b?$/i.exec(value.trim());
  if (!m) throw new InvalidInputError(`--memory: invalid size "${value}"`);
  const mult = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'b' | 'k' | 'm' | 'g'];
  return Math.floor(Number(m[1]) * mult);
}

/** `-e KEY=VALUE`; a bare `-e KEY` takes the value from this environment (skipped when unset). */
export function parseEnvFlags(values: readonly string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  for (const v of values) {
    if (v.includes('=')) {
      if (v.startsWith('=')) throw new InvalidInputError(`-e ${v}: empty variable name`);
      out.push(v);
    } else if (env[v] !== undefined) out.push(`${v}=${env[v]}`);
  }
  return out;
}

/** Docker's env-file: KEY=VALUE lines, `#` comments, blank lines; a bare KEY is taken from the environment. */
export function parseEnvFile(text: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.replace(/^\s+/, ''))
    .filter((l) => l !== '' && !l.startsWith('#'));
  return parseEnvFlags(lines, env);
}

/** `-v /host:/ctr[:ro|rw]`: host paths only (named volumes are not supported). */
export function parseVolume(value: string): BindMount {
  const parts = value.split(':');
  if (parts.length < 2 || parts.length > 3) throw new InvalidInputError(`-v ${value}: expected HOST:CONTAINER[:ro|rw]`);
  const [source, destination, mode] = parts as [string, string, string | undefined];
  if (!source.startsWith('/') && !source.startsWith('.')) throw new InvalidInputError(`-v ${value}: named volumes are not supported; give a host path`);
  if (!destination.startsWith('/')) throw new InvalidInputError(`-v ${value}: the container path must be absolute`);
  if (mode !== undefined && mode !== 'ro' && mode !== 'rw') throw new InvalidInputError(`-v ${value}: option must be ro or rw`);
  return { source: resolve(source), destination, readonly: mode === 'ro' };
}

function oneOf<T extends string>(flag: string, value: string | undefined, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T)) throw new InvalidInputError(`${flag} must be one of ${allowed.join(', ')}, got "${value}"`);
  return value as T;
}

/**
 * Registers `run`. Its companions over the same store (`images`, `ps`, `logs`, `rm`, `rmi`,
 * `prune`, `stop`, `kill`) are verbs of their own modules, the `-d` monitor is the runtime's: a warm `run` of
 * `true` is mostly start-up, so this module loads only what running a stored image needs; the
 * policy engine (registry client, sigstore), the detach monitor and the pull path (copy engine)
 * are imported where they are used (test/cli/run-module-graph.test.ts keeps it so).
 */
export function registerRun(program: Command): void {
  // `run IMAGE sh -c ...`: everything after the image belongs to the container, which commander
  // allows only when global options come before the verb (as podman's do).
  program.enablePositionalOptions();
  program
    .command('run')
    .description('run a command in a new container (foreground); exits with its status, 125/126/127 as podman')
    .argument('<image>', 'image: a registry reference (busybox, host/repo:tag) or a transport name (oci:/dir:ref)')
    .argument('[args...]', 'command and arguments (replace the image CMD)')
    .option('--rm', 'remove the container when it exits')
    .option('-d, --detach', 'run in the background (a monitor process waits for it) and print its id')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', collect)
    .option('--env-file <file>', 'read environment variables from a file (repeatable)', collect)
    .option('-v, --volume <host:ctr[:ro]>', 'bind-mount a host path (repeatable)', collect)
    .option('--tmpfs <path[:options]>', 'mount a tmpfs (repeatable)', collect)
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-u, --user <user[:group]>', 'user name or uid, optionally with a group name or gid')
    .option('--entrypoint <cmd>', 'override the image ENTRYPOINT (a word or a JSON array); clears CMD')
    .option('--read-only', 'mount the root filesystem read-only')
    .option('--read-only-tmpfs <bool>', 'with --read-only, mount writable tmpfs on /tmp, /run and /var/tmp (default true, as podman)', parseBool, true)
    .option('--cap-add <cap>', 'add a capability (NET_ADMIN or CAP_NET_ADMIN, or ALL; repeatable)', collect)
    .option('--cap-drop <cap>', 'drop a capability from the default set (or ALL; repeatable)', collect)
    .option('--ulimit <name=soft[:hard]>', 'set a resource limit (nofile=1024:2048, core=-1 for unlimited; repeatable)', collect)
    .option('-i, --interactive', "keep stdin open: the container reads this command's stdin")
    .option('-t, --tty', 'give the container a terminal (stdout and stderr then arrive merged through it)')
    .option('--init', 'run an init (catatonit) as PID 1 that forwards signals and reaps zombies')
    .option('--init-path <path>', 'the init binary for --init (default: catatonit on PATH or in /usr/libexec/podman)')
    .option('--tls-verify <bool>', 'require HTTPS and verified certificates when pulling (default: true; loopback may use HTTP)', parseBool)
    .option(
      '--network <mode>',
      'none (an empty namespace), host, or a private network reaching the host only: private (pasta, else slirp4netns), pasta, slirp4netns; default none, private with -p',
    )
    .option('-p, --publish <[ip:]hostPort:ctrPort[/tcp|udp]>', 'publish a container port on the host (repeatable; needs a private network)', collect)
    .option('--dns <ip>', "nameserver for the container's /etc/resolv.conf (repeatable)", collect)
    .option('--add-host <host:ip>', "add a line to the container's /etc/hosts (repeatable)", collect)
    .option('--timeout <seconds>', 'stop the container after this many seconds', parsePositiveInt)
    .option('--runtime <runc|crun>', 'OCI runtime', 'runc')
    .option('--pull <always|missing|never>', 'pull policy', 'missing')
    .option('-m, --memory <size>', 'memory limit (e.g. 256m)')
    .option('--cpus <n>', 'CPU limit (fractional)')
    .option('--pids-limit <n>', 'maximum number of processes', parsePositiveInt)
    .option('--name <name>', 'container name')
    .option('--hostname <name>', 'container host name')
    .option('--uidmap <ctr:host:size>', 'run in a user namespace with this uid mapping (repeatable)', collect)
    .option('--gidmap <ctr:host:size>', 'gid mapping for the user namespace (repeatable; default: as --uidmap)', collect)
    .option('--root <dir>', 'store root (default: $STEVEDORE_ROOT, /var/lib/stevedore for root, else $XDG_DATA_HOME/stevedore)')
    .option('--policy <file>', 'containers-policy.json the image must satisfy; checked at its source before anything is pulled or run')
    .passThroughOptions()
    .action(async (image: string, args: string[], o: RunFlags) => {
      // A non-root caller continues as root of a user namespace over its subuid range.
      if (needsUserNamespace()) return exitWith(await reexecInUserNamespace());
      if (o.policy) await (await import('../../policy/run-policy.js')).enforceRunPolicy(o.policy, image);
      const env: string[] = [];
      for (const f of o.envFile ?? []) env.push(...parseEnvFile(await readFile(f, 'utf8')));
      env.push(...parseEnvFlags(o.env ?? []));
      const cpus = o.cpus === undefined ? undefined : Number(o.cpus);
      if (cpus !== undefined && !(cpus > 0)) throw new InvalidInputError(`--cpus must be a positive number, got "${o.cpus}"`);
      const uidMappings = (o.uidmap ?? []).map((v) => parseIdMap('--uidmap', v));
      const gidMappings = o.gidmap ? o.gidmap.map((v) => parseIdMap('--gidmap', v)) : uidMappings;
      if (gidMappings.length > 0 && uidMappings.length === 0) throw new InvalidInputError('--gidmap needs --uidmap');
      const store = await ImageStore.open(o.root);
      const network = oneOf<NetworkMode>('--network', o.network, NETWORK_MODES, o.publish ? 'private' : 'none');
      const runOptions: RunOptions = {
        image,
        args,
        env,
        binds: (o.volume ?? []).map(parseVolume),
        tmpfs: o.tmpfs,
        workdir: o.workdir,
        user: o.user,
        entrypoint: o.entrypoint,
        readOnly: o.readOnly,
        readOnlyTmpfs: o.readOnlyTmpfs,
        podmanDefaults: true,
        ...terminalOptions(o),
        ...(o.init || o.initPath ? { init: await findInit(o.initPath) } : {}),
        capabilities: { add: o.capAdd ?? [], drop: o.capDrop ?? [] },
        ulimits: (o.ulimit ?? []).map(parseUlimit),
        ...(o.tlsVerify === undefined ? {} : { pullContext: { tlsVerify: o.tlsVerify } }),
        network,
        publish: (o.publish ?? []).map(parsePublish),
        dns: (o.dns ?? []).map(parseDns),
        addHosts: (o.addHost ?? []).map(parseAddHost),
        timeoutSeconds: o.timeout,
        // As podman: at --timeout the container is killed (no grace) and `run` exits 255.
        ...(o.timeout !== undefined ? { stopGraceSeconds: 0 } : {}),
        runtime: oneOf('--runtime', o.runtime, ['runc', 'crun'] as const, 'runc'),
        pull: oneOf<PullPolicy>('--pull', o.pull, ['always', 'missing', 'never'], 'missing'),
        memory: o.memory === undefined ? undefined : parseMemory(o.memory),
        cpus,
        pidsLimit: o.pidsLimit,
        name: o.name,
        // With the host's network, podman keeps the host's name (the engine's default is the short id).
        hostname: o.hostname ?? (network === 'host' ? hostname() : undefined),
        remove: o.rm,
        ...(uidMappings.length > 0 ? { idMappings: { uidMappings, gidMappings } } : {}),
      };
      if (o.detach) {
        const { startDetached } = await import('../../runtime/lifecycle/monitor.js');
        const started = await startDetached(store, runOptions);
        if (started.error) {
          process.stderr.write(`Error: ${started.error.message}\n`);
          return exitWith(started.error.exitCode);
        }
        process.stdout.write(`${started.id}\n`);
        return;
      }
      const signal = signalOnInterrupt();
      let result: RunResult;
      try {
        result = await runContainer(store, {
          ...runOptions,
          stdout: (c) => process.stdout.write(c),
          stderr: (c) => process.stderr.write(c),
          onWarning: (w) => process.stderr.write(`WARN: ${w}\n`),
          signal,
        });
      } catch (err) {
        const code = startFailureExitCode(err);
        if (code === undefined) throw err; // the tool's own failure: 125
        process.stderr.write(`Error: ${(err as Error).message}\n`);
        return exitWith(code);
      }
      if (result.reason === 'DeadlineExceeded') {
        process.stderr.write(`Error: container ${result.name} exceeded its ${o.timeout}s timeout (DeadlineExceeded)\n`);
        return exitWith(EXIT_TIMEOUT);
      }
      if (result.exitCode !== 0) return exitWith(result.exitCode);
    });
}

/**
 * `-i` and `-t`. runc in the foreground makes the container's terminal itself and attaches it to a
 * terminal it finds on its own stdin (podman's conmon instead receives the terminal over a console
 * socket, which Node cannot: no SCM_RIGHTS). So `-t` needs stdin to be a terminal, which is then
 * the container's input too; without one (a pipe, a detached run) the container runs without a
 * terminal, with a warning, so that scripts written for `docker run -t` keep working.
 */
export function terminalOptions(
  o: Pick<RunFlags, 'interactive' | 'tty' | 'detach'>,
  stdinIsTTY = process.stdin.isTTY === true,
): { interactive?: boolean; terminal?: boolean } {
  if (!o.tty) return o.interactive && !o.detach ? { interactive: true } : {};
  if (o.detach || !stdinIsTTY) {
    process.stderr.write(`WARN: -t: ${o.detach ? 'a detached container' : 'stdin is not a terminal, so the container'} runs without a terminal\n`);
    return o.interactive && !o.detach ? { interactive: true } : {};
  }
  return { interactive: true, terminal: true };
}
