/**
 * Child processes for tests: one-shot commands whose output we collect (`runCommand`), and
 * long-running servers that must die with the test run (`spawnManaged`).
 *
 * Every managed process is remembered in a module-level set and SIGKILLed when the worker exits,
 * so a test that throws before its `afterAll` cannot leave a registry listening on the machine.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, which is then closed. */
  input?: string | Buffer;
  /** Kill the command (SIGKILL) after this long; default 60 s. */
  timeoutMs?: number;
}

/** Thrown by `runChecked` when a command exits non-zero; carries its output for the test log. */
export class CommandFailedError extends Error {
  readonly result: CommandResult;
  constructor(cmd: string, args: readonly string[], result: CommandResult) {
    super(
      `${cmd} ${args.join(' ')} exited with ${result.code ?? result.signal}\n` +
        `stdout: ${result.stdout.trim()}\nstderr: ${result.stderr.trim()}`,
    );
    this.name = 'CommandFailedError';
    this.result = result;
  }
}

/** Runs a command to completion and collects its output. Never rejects on a non-zero exit. */
export function runCommand(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    track(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    // A command that does not read stdin may close it early: EPIPE is not our failure.
    child.stdin!.on('error', () => {});
    child.stdin!.end(opts.input ?? '');
  });
}

/** `runCommand` that rejects with `CommandFailedError` unless the exit code is 0. */
export async function runChecked(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
  const res = await runCommand(cmd, args, opts);
  if (res.code !== 0) throw new CommandFailedError(cmd, args, res);
  return res;
}

export interface ManagedProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves when the process has exited, for whatever reason. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** True once the process has exited. */
  hasExited(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs` (default 3 s); resolves once it is gone. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Where stdout/stderr go; e.g. `['ignore', logFd, logFd]` to write straight into a log file. */
  stdio?: StdioOptions;
}

/** Starts a long-running process that is killed on `stop()` or, at the latest, when the worker exits. */
export function spawnManaged(cmd: string, args: readonly string[], opts: SpawnOptions = {}): Promise<ManagedProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: opts.stdio ?? ['ignore', 'ignore', 'ignore'],
    });
    track(child);
    let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
      child.once('exit', (code, signal) => {
        exitInfo = { code, signal };
        res(exitInfo);
      });
    });
    child.once('error', reject);
    child.once('spawn', () => {
      const pid = child.pid!;
      resolve({
        child,
        pid,
        exited,
        hasExited: () => exitInfo !== undefined,
        async stop(graceMs = 3000) {
          if (exitInfo !== undefined) return;
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
          await exited;
          clearTimeout(timer);
        },
      });
    });
  });
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // 'exit' handlers must be synchronous; kill() is. Only our own children, by their handles.
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
}
