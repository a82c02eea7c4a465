import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { sleep } from '../../util/sleep.js';
import { NetworkSetupError } from './errors.js';

/** A helper daemon (pasta, slirp4netns) the engine started and stops, by its PID. */
export interface HelperProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Output so far (errors are reported from it). */
  stderr(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

export function startHelper(cmd: string, args: readonly string[], stdio: StdioOptions = ['ignore', 'ignore', 'pipe']): HelperProcess {
  const child = spawn(cmd, args, { stdio });
  if (child.pid === undefined) {
    // spawn reports ENOENT asynchronously; make it a clear, synchronous error.
    child.on('error', () => undefined);
    throw new NetworkSetupError(`${cmd} could not be started (is it installed? Debian: apt-get install ${cmd === 'pasta' ? 'passt' : cmd})`);
  }
  let err = '';
  child.stderr?.on('data', (c: Buffer) => {
    if (err.length < 16 * 1024) err += c.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  child.on('error', () => undefined);
  const pid = child.pid;
  return {
    pid,
    child,
    stderr: () =>
      err
        .split('\n')
        .filter((l) => l.trim() !== '' && !l.includes('syslog'))
        .join('; '),
    async stop(graceMs = 2000): Promise<void> {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Resolves when `ready()` is true, rejects when the helper exits first or `timeoutMs` passes. */
export async function waitReady(h: HelperProcess, what: string, ready: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await ready()) return;
    if (h.child.exitCode !== null || h.child.signalCode !== null) {
      throw new NetworkSetupError(`${what} exited (${h.child.exitCode ?? h.child.signalCode}) before the network was ready: ${h.stderr() || 'no message'}`);
    }
    if (Date.now() > deadline) {
      await h.stop();
      throw new NetworkSetupError(`${what} did not get ready within ${timeoutMs / 1000}s: ${h.stderr() || 'no message'}`);
    }
    await sleep(20);
  }
}
