/**
 * Runs the system `skopeo` (1.9) as an independent client against harness registries.
 *
 * Each call gets `--insecure-policy` (no dependency on /etc/containers/policy.json) and an empty
 * auth file via REGISTRY_AUTH_FILE, so credentials stored on the machine never leak into a test
 * that means to be anonymous. Pass credentials explicitly (`--creds`, `--src-creds`, `--dest-creds`).
 */
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand, type CommandResult } from '../../hack/lib/harness/procs.js';

// One fixed, constant file shared by all workers: vitest kills its workers without running
// 'exit' handlers, so a per-process temp file would leak on every run.
const EMPTY_AUTH_FILE = join(tmpdir(), 'stevedore-skopeo-empty-auth.json');

function authFile(): string {
  if (!existsSync(EMPTY_AUTH_FILE)) {
    // Write-then-rename so a concurrent worker never reads a half-written file.
    const tmp = `${EMPTY_AUTH_FILE}.${process.pid}`;
    writeFileSync(tmp, JSON.stringify({ auths: {} }));
    renameSync(tmp, EMPTY_AUTH_FILE);
  }
  return EMPTY_AUTH_FILE;
}

/** `skopeo --insecure-policy ARGS...`; resolves with the exit code and output, never rejects on failure. */
export function skopeo(args: readonly string[], opts: { timeoutMs?: number } = {}): Promise<CommandResult> {
  return runCommand('skopeo', ['--insecure-policy', ...args], {
    env: { ...process.env, REGISTRY_AUTH_FILE: authFile() },
    timeoutMs: opts.timeoutMs ?? 60_000,
  });
}

/** `user:pass` for `--creds`-style flags. */
export function creds(reg: { username?: string; password?: string }): string {
  if (reg.username === undefined || reg.password === undefined) throw new Error('registry has no credentials');
  return `${reg.username}:${reg.password}`;
}
