import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { errorMessage, InvalidInputError, StevedoreError } from '../util/errors.js';
import { sleep } from '../util/sleep.js';
import { cgroupMode, type CgroupMode } from './cgroups.js';

const exec = promisify(execFile);

export type RuntimeName = 'runc' | 'crun';
export const RUNTIME_NAMES: readonly RuntimeName[] = ['runc', 'crun'];

/** `state` as the OCI runtime spec defines it (runtime.md, "State"). */
export interface ContainerState {
  ociVersion: string;
  id: string;
  status: 'creating' | 'created' | 'running' | 'stopped';
  pid?: number;
  bundle: string;
  annotations?: Record<string, string>;
}

export interface RunIo {
  onStdout(chunk: Buffer): void;
  onStderr(chunk: Buffer): void;
  /** `inherit`: the runtime (and so the container, or its terminal) reads this process's stdin (`run -i`); default: none. */
  stdin?: 'inherit' | 'ignore';
}

/** A foreground container: the runtime process waits for it and exits with its status. */
export interface RunningContainer {
  readonly pid: number | undefined;
  /** The container's exit code (128+n for death by signal n), once the runtime has returned. */
  readonly exited: Promise<number>;
}

/** The operations of the OCI runtime command line (runtime.md "Operations"), plus `run`. */
export interface OciRuntime {
  readonly name: RuntimeName;
  readonly binary: string;
  /** Fails with a clear error when the runtime cannot run containers on this host. */
  check(): Promise<void>;
  create(id: string, bundle: string): Promise<void>;
  start(id: string): Promise<void>;
  state(id: string): Promise<ContainerState>;
  kill(id: string, signal: string, opts?: { all?: boolean }): Promise<void>;
  delete(id: string, opts?: { force?: boolean }): Promise<void>;
  /** Creates and starts the container in the foreground, its stdout/stderr piped to `io`. */
  run(id: string, bundle: string, io: RunIo): RunningContainer;
  /** The runtime's own error log of the last `run`/`create` of this bundle. */
  errorLog(bundle: string): Promise<string>;
  /**
   * Watches the container's events (`runtime events`) and reports whether the kernel OOM killer
   * struck one of its processes; starts once the container exists. `stop()` ends the watch.
   */
  watchOom(id: string): OomWatch;
}

export interface OomWatch {
  /** Whether an OOM event was seen so far. */
  readonly oomKilled: boolean;
  stop(): void;
}

export class RuntimeUnavailableError extends StevedoreError {
  constructor(message: string) {
    super('RUNTIME_UNAVAILABLE', message);
  }
}

export class RuntimeCommandError extends StevedoreError {
  constructor(runtime: string, op: string, id: string, stderr: string) {
    super('RUNTIME_FAILED', `${runtime} ${op} ${id}: ${stderr.trim() || 'failed'}`);
  }
}

export interface RuntimeOptions {
  /** The binary; default: the name, looked up on PATH. */
  binary?: string;
  /** The runtime's state directory (`--root`); default: the runtime's own default. */
  stateRoot?: string;
  /** For tests: the host's cgroup layout. */
  cgroupMode?: CgroupMode;
}

const LOG_FILE = 'runtime.log';

/** runc and crun share the command line of runc; they differ in checks and log options. */
class CliRuntime implements OciRuntime {
  readonly name: RuntimeName;
  readonly binary: string;
  readonly #opts: RuntimeOptions;

  constructor(name: RuntimeName, opts: RuntimeOptions) {
    this.name = name;
    this.binary = opts.binary ?? name;
    this.#opts = opts;
  }

  #global(bundle?: string): string[] {
    const g: string[] = [];
    if (this.#opts.stateRoot) g.push('--root', this.#opts.stateRoot);
    if (bundle) g.push('--log', `${bundle}/${LOG_FILE}`, '--log-format', 'json');
    return g;
  }

  async #exec(op: string, id: string, args: string[], bundle?: string): Promise<string> {
    try {
      const { stdout } = await exec(this.binary, [...this.#global(bundle), ...args], { maxBuffer: 4 * 1024 * 1024 });
      return stdout;
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      if (e.code === 'ENOENT') throw new RuntimeUnavailableError(`${this.name} not found (${this.binary}): install it or choose another --runtime`);
      throw new RuntimeCommandError(this.name, op, id, e.stderr ?? errorMessage(err));
    }
  }

  async check(): Promise<void> {
    // A missing binary is reported by `run` itself (spawn ENOENT); no extra process per container.
    if (this.name === 'crun') {
      const mode = this.#opts.cgroupMode ?? cgroupMode();
      if (mode === 'hybrid') throw crunHybridError();
    }
  }

  async create(id: string, bundle: string): Promise<void> {
    await this.#exec('create', id, ['create', '--bundle', bundle, id], bundle);
  }

  async start(id: string): Promise<void> {
    await this.#exec('start', id, ['start', id]);
  }

  async state(id: string): Promise<ContainerState> {
    return JSON.parse(await this.#exec('state', id, ['state', id])) as ContainerState;
  }

  async kill(id: string, signal: string, opts: { all?: boolean } = {}): Promise<void> {
    await this.#exec('kill', id, ['kill', ...(opts.all ? ['--all'] : []), id, signal.replace(/^SIG/, '')]);
  }

  async delete(id: string, opts: { force?: boolean } = {}): Promise<void> {
    await this.#exec('delete', id, ['delete', ...(opts.force ? ['--force'] : []), id]);
  }

  run(id: string, bundle: string, io: RunIo): RunningContainer {
    const child: ChildProcess = spawn(this.binary, [...this.#global(bundle), 'run', '--bundle', bundle, id], {
      stdio: [io.stdin ?? 'ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (c: Buffer) => io.onStdout(c));
    child.stderr!.on('data', (c: Buffer) => io.onStderr(c));
    const exited = new Promise<number>((resolve, reject) => {
      child.once('error', (err: NodeJS.ErrnoException) => {
        reject(err.code === 'ENOENT' ? new RuntimeUnavailableError(`${this.name} not found (${this.binary})`) : err);
      });
      // 'close' waits for the pipes to drain, so every byte has been delivered before the code.
      child.once('close', (code, signal) => resolve(code ?? (signal ? 128 + signalNumber(signal) : 255)));
    });
    return { pid: child.pid, exited };
  }

  watchOom(id: string): OomWatch {
    let oomKilled = false;
    let stopped = false;
    let child: ChildProcess | undefined;
    const start = async (): Promise<void> => {
      // The container exists shortly after `run` starts; `events` refuses an id it cannot find.
      for (let i = 0; i < 100 && !stopped; i++) {
        const ok = await this.state(id).then(
          () => true,
          () => false,
        );
        if (ok) break;
        await sleep(20);
      }
      if (stopped) return;
      child = spawn(this.binary, [...this.#global(), 'events', '--interval', '24h', id], { stdio: ['ignore', 'pipe', 'ignore'] });
      child.once('error', () => undefined);
      let buf = '';
      child.stdout!.on('data', (c: Buffer) => {
        buf += c.toString();
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          try {
            if ((JSON.parse(line) as { type?: string }).type === 'oom') oomKilled = true;
          } catch {
            // not an event line
          }
        }
      });
    };
    void start();
    return {
      get oomKilled() {
        return oomKilled;
      },
      stop: () => {
        stopped = true;
        child?.kill('SIGKILL');
      },
    };
  }

  async errorLog(bundle: string): Promise<string> {
    const text = await readFile(`${bundle}/${LOG_FILE}`, 'utf8').catch(() => '');
    const msgs: string[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        const rec = JSON.parse(line) as { level?: string; msg?: string };
        if ((rec.level === 'error' || rec.level === 'fatal') && rec.msg) msgs.push(rec.msg);
      } catch {
        msgs.push(line);
      }
    }
    return msgs.join('\n');
  }
}

function crunHybridError(): RuntimeUnavailableError {
  return new RuntimeUnavailableError(
    'crun cannot run here: cgroups are in hybrid mode (v1 controllers plus a cgroup2 mount at /sys/fs/cgroup/unified), which crun refuses ("cgroups in hybrid mode not supported"); use --runtime runc',
  );
}

/** Recognises crun's refusal in its own output, for hosts the pre-flight check did not catch. */
export function runtimeRefusal(runtime: RuntimeName, text: string): RuntimeUnavailableError | undefined {
  if (runtime === 'crun' && /hybrid mode not supported/.test(text)) return crunHybridError();
  return undefined;
}

export function ociRuntime(name: string, opts: RuntimeOptions = {}): OciRuntime {
  if (!RUNTIME_NAMES.includes(name as RuntimeName)) throw new InvalidInputError(`unknown OCI runtime "${name}" (runc or crun)`);
  return new CliRuntime(name as RuntimeName, opts);
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGUSR1: 10, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };
function signalNumber(sig: string): number {
  return SIGNALS[sig] ?? 0;
}

/**
 * What a failed start means, as Podman reports it: 127 when the command does not exist, 126 when
 * it cannot be executed; undefined when the runtime's log shows no start failure.
 */
export function classifyStartFailure(log: string): 126 | 127 | undefined {
  // runc: `exec: "cmd": reason`; crun: `executable file `cmd` not found` / `open executable: ...`.
  const m = /exec(?:ve)?: "[^"]*": ([^\n]*)|(executable file `[^`]*` not found[^\n]*)|open executable: ([^\n]*)/i.exec(log);
  if (!m) return undefined;
  const reason = m[1] ?? m[2] ?? m[3] ?? '';
  if (/executable file not found|not found|no such file or directory/i.test(reason)) return 127;
  if (/permission denied|is a directory|exec format error|not a directory/i.test(reason)) return 126;
  return undefined;
}
