/**
 * Runs the system `skopeo` (1.9) as an independent client against harness registries.
 *
 * Each call gets `--insecure-policy` (no dependency on /etc/containers/policy.json) and an empty
 * auth file via REGISTRY_AUTH_FILE, so credentials stored on the machine never leak into a test
 * that means to be anonymous. Pass credentials explicitly (`--creds`, `--src-creds`, `--dest-creds`).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand, type CommandResult } from './procs.js';

let emptyAuthFile: string | undefined;

function authFile(): string {
  if (emptyAuthFile === undefined) {
    // One tiny file per worker process; it lives in the OS temp dir like every harness file.
    const dir = mkdtempSync(join(tmpdir(), 'stevedore-skopeo-auth-'));
    emptyAuthFile = join(dir, 'auth.json');
    writeFileSync(emptyAuthFile, JSON.stringify({ auths: {} }));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return emptyAuthFile;
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
