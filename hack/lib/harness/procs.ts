/**
 * Child processes for tests: one-shot commands whose output we collect (`runCommand`), and
 * long-running servers that must die with the test run (`spawnManaged`).
 *
 * Managed processes run under a watchdog tied to this process's lifetime (see WATCHDOG), and are
 * also SIGKILLed from a process 'exit' handler, so a crashed or killed test worker cannot leave a
 * registry listening on the machine.
 */
import { spawn, type ChildProcess } from 'node:child_process';

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
    super(`${cmd} ${args.join(' ')} exited with ${result.code ?? result.signal}\n` + `stdout: ${result.stdout.trim()}\nstderr: ${result.stderr.trim()}`);
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
    killOnExit(child);
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
  /**
   * Where stdout/stderr go, e.g. `[logFd, logFd]` to write straight into a log file. stdin is
   * always ours: it is the lifeline of the watchdog below.
   */
  output?: [StdioOptionEntry, StdioOptionEntry];
  /** A directory the watchdog deletes once the command is gone (the command's temp dir). */
  removeWhenGone?: string;
}

type StdioOptionEntry = 'ignore' | 'inherit' | number;

/**
 * Runs the command under a small `sh` watchdog whose stdin is a pipe from this process. When
 * this process dies for any reason (even SIGKILL from the test runner, when no 'exit' handler
 * runs), the pipe closes and the watchdog SIGKILLs the command (and removes `removeWhenGone`).
 * SIGTERM to the shell is passed on to the command.
 */
const WATCHDOG = `
exec 3<&0 0</dev/null
"$@" &
c=$!
trap 'kill -TERM "$c" 2>/dev/null' TERM INT
( cat <&3 >/dev/null; kill -KILL "$c" 2>/dev/null
  if [ -n "$STEVEDORE_WATCHDOG_RM" ]; then sleep 0.2; rm -rf "$STEVEDORE_WATCHDOG_RM"; fi ) &
exec 3<&-
while :; do
  wait "$c"; s=$?
  kill -0 "$c" 2>/dev/null || break
done
exit $s
`;

/** Starts a long-running process that dies on `stop()` or, at the latest, with this process. */
export function spawnManaged(cmd: string, args: readonly string[], opts: SpawnOptions = {}): Promise<ManagedProcess> {
  return new Promise((resolve, reject) => {
    const [out, err] = opts.output ?? ['ignore', 'ignore'];
    const child = spawn('/bin/sh', ['-c', WATCHDOG, 'stevedore-watchdog', cmd, ...args], {
      cwd: opts.cwd,
      env: { ...(opts.env ?? process.env), STEVEDORE_WATCHDOG_RM: opts.removeWhenGone ?? '' },
      stdio: ['pipe', out, err],
    });
    killOnExit(child);
    // Closing stdin is how we tell the watchdog to kill; EPIPE after it is gone is expected.
    child.stdin!.on('error', () => {});
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
          if (exitInfo === undefined) {
            child.kill('SIGTERM');
            const timer = setTimeout(() => {
              // The watchdog SIGKILLs the command when its stdin closes; then the shell goes too.
              child.stdin!.destroy();
              child.kill('SIGKILL');
            }, graceMs);
            await exited;
            clearTimeout(timer);
          }
          // Releases the watchdog's `cat` (it outlives the shell until its pipe closes).
          child.stdin!.destroy();
        },
      });
    });
  });
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Kills `child` with SIGKILL if this process exits first, so no test leaves a registry or API server behind. */
export function killOnExit(child: ChildProcess): void {
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
