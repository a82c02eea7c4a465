import { randomBytes } from 'node:crypto';
import { chmod, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage, InvalidInputError, StevedoreError } from '../util/errors.js';
import { rootLogger } from '../util/log.js';
import { inUserNamespace } from './cgroups.js';
import { listContainers, writeRecord, type ContainerRecord } from './containers.js';
import { K8sFileLog } from './logs.js';
import { classifyStartFailure, ociRuntime, runtimeRefusal, type OciRuntime, type RuntimeName, type RuntimeOptions } from './oci-runtime.js';
import {
  isPrivateNetwork,
  setupPrivateNetwork,
  writeEtcFiles,
  type HostEntry,
  type NetworkMode,
  type PortMapping,
  type PrivateNetwork,
} from './network/index.js';
import { generateSpec, specJson, type SpecOptions } from './spec.js';
import type { ImageStore, PullPolicy, RootfsMode, StoredImage } from './store/index.js';
import type { TransportContext } from '../transports/index.js';

const log = rootLogger.child({ component: 'container' });

export interface RunOptions extends Omit<SpecOptions, 'id' | 'etcFiles' | 'network' | 'netnsPath'> {
  image: string;
  /** none (default), host, or a private network with outbound access to the host (private, pasta, slirp4netns). */
  network?: NetworkMode;
  /** `-p`: ports published from the host into a private network. */
  publish?: PortMapping[];
  /** `--dns`, `--add-host`: written to the container's /etc/resolv.conf and /etc/hosts. */
  dns?: string[];
  addHosts?: HostEntry[];
  /** The container id (64 hex digits); default: random. */
  id?: string;
  name?: string;
  pull?: PullPolicy;
  /** Registry settings of a pull (`--tls-verify`). */
  pullContext?: TransportContext;
  runtime?: RuntimeName;
  runtimeOptions?: RuntimeOptions;
  rootfsMode?: RootfsMode;
  /** Remove the container (bundle, rootfs, log) when it exits. */
  remove?: boolean;
  /** Seconds before the container is stopped (SIGTERM, then SIGKILL after `stopGraceSeconds`). */
  timeoutSeconds?: number;
  stopGraceSeconds?: number;
  stdout?: (chunk: Buffer) => void;
  stderr?: (chunk: Buffer) => void;
  /** `run -i`: the container reads this process's stdin. */
  interactive?: boolean;
  /** Warnings (cgroups not delegated, ...). */
  onWarning?: (message: string) => void;
  signal?: AbortSignal;
  /** An image already in the store's layout (the builder's stage so far): used as is, never pulled. */
  prepared?: StoredImage;
  /** Rotate the container's log file past this size (kept: the file and one rotated `.1`); default: no cap. */
  logMaxBytes?: number;
  /** Keep a container record for `ps`/`rm` (default true); the builder's RUN containers have none. */
  record?: boolean;
}

export type ExitReason = 'Completed' | 'Error' | 'OOMKilled' | 'DeadlineExceeded' | 'Cancelled';

export interface RunResult {
  id: string;
  name: string;
  exitCode: number;
  reason: ExitReason;
  /** The k8s-file log (gone when the container was removed). */
  logPath: string;
  bundle: string;
  rootfsMode: 'overlay' | 'copy';
  warnings: string[];
  startedAt: string;
  finishedAt: string;
}

export class ContainerStartError extends StevedoreError {
  readonly exitCode: 126 | 127;
  constructor(exitCode: 126 | 127, message: string) {
    super(exitCode === 127 ? 'COMMAND_NOT_FOUND' : 'COMMAND_NOT_EXECUTABLE', message);
    this.exitCode = exitCode;
  }
}

/**
 * Promise.all that waits for every promise to settle before rejecting with the first failure, so
 * no write is still running when the caller's cleanup removes the directory it writes into.
 */
async function settleAll<T extends readonly unknown[]>(promises: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as { -readonly [K in keyof T]: Awaited<T[K]> };
}

/** Adds the search bit for others to each directory (never read or write): 0700 becomes 0701. */
export async function ensureSearchable(dirs: readonly string[]): Promise<void> {
  for (const d of dirs) {
    const st = await stat(d);
    if ((st.mode & 0o001) === 0) await chmod(d, (st.mode & 0o7777) | 0o001);
  }
}

/**
 * Runs one container in the foreground: pull (by policy) → snapshot → rootfs → config.json →
 * `runtime run`; streams its output to the callbacks and to a k8s-file log; stops it on timeout
 * or abort (SIGTERM, grace, SIGKILL); returns its exit code (128+n for death by signal n).
 * A command the runtime cannot find or execute rejects with ContainerStartError (127/126).
 */
export async function runContainer(store: ImageStore, opts: RunOptions): Promise<RunResult> {
  const runtimeName = opts.runtime ?? 'runc';
  // Rootless, the runtime's default state dir (/run/runc) is not ours: keep state in the store.
  const rootless = process.geteuid?.() !== 0 || inUserNamespace();
  const runtimeOptions = { ...(rootless ? { stateRoot: join(store.root, 'run', runtimeName) } : {}), ...opts.runtimeOptions };
  const runtime: OciRuntime = ociRuntime(runtimeName, runtimeOptions);
  await runtime.check();
  const image =
    opts.prepared ??
    (await store.pull(opts.image, { policy: opts.pull ?? 'missing', context: opts.pullContext, signal: opts.signal, snapshots: { idMap: opts.idMappings } }));
  const keepRecord = opts.record !== false;
  const id = opts.id ?? randomBytes(32).toString('hex');
  if (!/^[0-9a-f]{64}$/.test(id)) throw new InvalidInputError(`container id must be 64 hex digits`);
  const name = opts.name ?? `stevedore-${id.slice(0, 12)}`;
  if (keepRecord && opts.name !== undefined && (await listContainers(store)).some((c) => c.name === opts.name)) {
    throw new InvalidInputError(`the container name "${opts.name}" is already in use; remove that container or choose another name`);
  }
  // The runtime mounts the bundle's rootfs and binds from inside the container's user namespace,
  // whose root is an unprivileged node id: it must be able to pass through the store to them.
  if (opts.idMappings) await ensureSearchable([store.root, join(store.root, 'containers')]);
  // A container removed when it exits needs no durable upper dir (and its unmount then skips a sync of the whole disk).
  const ctr = await store.createRootfs(id, image, { mode: opts.rootfsMode, signal: opts.signal, idMap: opts.idMappings, volatile: opts.remove === true });
  const warnings: string[] = [];
  const logPath = join(ctr.dir, 'ctr.log');
  let cleanedUp = false;
  let record: ContainerRecord | undefined;
  // `runtime run` deletes its container when it returns; only an interrupted one needs a delete.
  let runReturned = false;
  let net: PrivateNetwork | undefined;
  const cleanup = async (): Promise<void> => {
    if (cleanedUp) return;
    cleanedUp = true;
    if (!runReturned) await runtime.delete(id, { force: true }).catch(() => undefined);
    await net?.close().catch((err: unknown) => log.warn({ id, err: errorMessage(err) }, 'private network teardown failed'));
    if (opts.remove) await ctr.remove();
    else await ctr.unmount();
  };
  try {
    const hostname = opts.hostname ?? id.slice(0, 12);
    const etcFiles = { hosts: join(ctr.dir, 'hosts'), hostname: join(ctr.dir, 'hostname'), resolvConf: join(ctr.dir, 'resolv.conf') };
    // The bundle's files are independent of each other and of the spec: written side by side.
    if (isPrivateNetwork(opts.network)) net = await setupPrivateNetwork({ driver: opts.network, ports: opts.publish, dir: ctr.dir });
    else if (opts.publish && opts.publish.length > 0)
      throw new InvalidInputError(`--publish needs a private network (--network private, pasta or slirp4netns), not "${opts.network ?? 'none'}"`);
    const etcWritten = writeEtcFiles(etcFiles, {
      hostname,
      name: opts.name,
      addHosts: opts.addHosts,
      dns: opts.dns,
      ...(net ? { address: net.address, gateway: net.gateway } : {}),
    });
    record = {
      id,
      name,
      image: image.name,
      imageDigest: image.digest,
      runtime: runtime.name,
      status: 'running',
      createdAt: new Date().toISOString(),
      bundle: ctr.dir,
      logPath,
      command: [],
      monitorPid: process.pid,
      ...(image.chainIds.length > 0 ? { snapshot: image.chainIds[image.chainIds.length - 1]!.replace(/^sha256:/, '') } : {}),
      ...(runtimeOptions.stateRoot ? { stateRoot: runtimeOptions.stateRoot } : {}),
    };
    const [, { spec, warnings: specWarnings, command }] = await settleAll([
      etcWritten,
      generateSpec(image.config, ctr.rootfs, { ...opts, id, hostname, etcFiles, network: opts.network === 'host' ? 'host' : 'none', netnsPath: net?.nsPath }),
    ] as const);
    for (const w of specWarnings) {
      warnings.push(w);
      opts.onWarning?.(w);
    }
    record.command = command;
    spec.annotations = { ...spec.annotations, 'dev.stevedore.container.name': name, 'org.opencontainers.image.ref.name': image.name };
    await settleAll([keepRecord ? writeRecord(record) : undefined, writeFile(join(ctr.dir, 'config.json'), specJson(spec))]);

    const logFile = new K8sFileLog(logPath, { maxBytes: opts.logMaxBytes });
    const startedAt = new Date().toISOString();
    let stderrText = '';
    const running = runtime.run(id, ctr.dir, {
      stdin: opts.interactive ? 'inherit' : 'ignore',
      onStdout: (c) => {
        logFile.write('stdout', c);
        opts.stdout?.(c);
      },
      onStderr: (c) => {
        if (stderrText.length < 64 * 1024) stderrText += c.toString();
        logFile.write('stderr', c);
        opts.stderr?.(c);
      },
    });
    log.debug({ id, name, image: image.name, pid: running.pid, rootfs: ctr.mode }, 'container started');
    // OOM kills are only reported through the runtime's events, and only with a memory limit.
    const oom = spec.linux.resources.memory ? runtime.watchOom(id) : undefined;

    let reason: ExitReason | undefined;
    const timers: NodeJS.Timeout[] = [];
    const stop = (why: ExitReason): void => {
      if (reason) return;
      reason = why;
      const grace = (opts.stopGraceSeconds ?? 10) * 1000;
      // To PID 1, as podman: the container has its own PID namespace, so SIGKILL of PID 1 ends every process.
      const kill = (signal: string) =>
        void runtime.kill(id, signal).catch((err: unknown) => log.debug({ id, signal, err: errorMessage(err) }, 'signal not delivered'));
      // No grace (podman's --timeout): SIGKILL only, no SIGTERM for the container to act on first.
      if (grace <= 0) return kill('SIGKILL');
      kill('SIGTERM');
      timers.push(setTimeout(() => kill('SIGKILL'), grace));
    };
    if (opts.timeoutSeconds !== undefined) timers.push(setTimeout(() => stop('DeadlineExceeded'), opts.timeoutSeconds * 1000));
    const onAbort = (): void => stop('Cancelled');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    // An abort that came while the container was being set up has no event left to fire.
    if (opts.signal?.aborted) onAbort();
    let exitCode: number;
    try {
      exitCode = await running.exited;
      runReturned = true;
    } finally {
      oom?.stop();
      for (const t of timers) clearTimeout(t);
      opts.signal?.removeEventListener('abort', onAbort);
      await logFile.close();
    }
    const finishedAt = new Date().toISOString();
    if (!reason && oom?.oomKilled) reason = 'OOMKilled';
    if (!reason && exitCode !== 0) {
      const runtimeLog = await runtime.errorLog(ctr.dir);
      const refusal = runtimeRefusal(runtime.name, `${runtimeLog}\n${stderrText}`);
      if (refusal) throw refusal;
      const startFailure = classifyStartFailure(runtimeLog);
      if (startFailure) throw new ContainerStartError(startFailure, `${runtime.name}: ${runtimeLog.split('\n').pop()}`);
    }
    const result: RunResult = {
      id,
      name,
      exitCode,
      reason: reason ?? (exitCode === 0 ? 'Completed' : 'Error'),
      logPath,
      bundle: ctr.dir,
      rootfsMode: ctr.mode,
      warnings,
      startedAt,
      finishedAt,
    };
    if (!opts.remove && keepRecord) await writeRecord({ ...record, status: 'exited', exitCode, reason: result.reason, finishedAt });
    return result;
  } catch (err) {
    log.debug({ id, err: errorMessage(err) }, 'container failed');
    if (record && !opts.remove && keepRecord) {
      await writeRecord({
        ...record,
        status: 'exited',
        exitCode: err instanceof ContainerStartError ? err.exitCode : 125,
        reason: 'Error',
        finishedAt: new Date().toISOString(),
      }).catch(() => undefined);
    }
    throw err;
  } finally {
    await cleanup();
  }
}
