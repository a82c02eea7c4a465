/**
 * The real `cosign` (and `crane`), built by `make cosign crane` (hack/cosign.mk) into the version-keyed
 * cache. Tests use them as independent peers: cosign must verify what stevedore signs and sign what
 * stevedore verifies. A missing binary fails the test with the command that builds it.
 *
 * Every call runs offline-safe: no transparency log upload, the log ignored on verify, a private
 * HOME (cosign caches TUF metadata there) and an empty docker config (no stored credentials).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand, type CommandResult } from '../../hack/lib/harness/procs.js';

const CACHE = process.env.STEVEDORE_CACHE ?? join(homedir(), '.cache', 'stevedore');
export const COSIGN = process.env.COSIGN ?? join(CACHE, 'bin', 'cosign-v2.6.5');
export const CRANE = process.env.CRANE ?? join(CACHE, 'bin', 'crane-v0.22.1');

const HOME = join(tmpdir(), 'stevedore-cosign-home');

function peerEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  mkdirSync(join(HOME, 'docker'), { recursive: true });
  writeFileSync(join(HOME, 'docker', 'config.json'), '{"auths":{}}');
  return { ...process.env, HOME, DOCKER_CONFIG: join(HOME, 'docker'), COSIGN_EXPERIMENTAL: '', TUF_ROOT: join(HOME, 'tuf'), ...extra };
}

function need(bin: string, target: string): void {
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run "make ${target}" (hack/cosign.mk) first`);
}

/** `cosign ARGS...` with COSIGN_PASSWORD set when given; never rejects on failure. */
export function cosign(args: readonly string[], opts: { password?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CommandResult> {
  need(COSIGN, 'cosign');
  const env = peerEnv({ ...(opts.password === undefined ? {} : { COSIGN_PASSWORD: opts.password }), ...opts.env });
  return runCommand(COSIGN, args, { env, timeoutMs: opts.timeoutMs ?? 90_000 });
}

export function crane(args: readonly string[]): Promise<CommandResult> {
  need(CRANE, 'crane');
  return runCommand(CRANE, args, { env: peerEnv(), timeoutMs: 60_000 });
}

/**
 * A trusted root with no authorities: `cosign verify --new-bundle-format` insists on one, and a key
 * (not a CA or a log) is what vouches for the bundles in these tests.
 */
export function emptyTrustedRoot(dir: string): string {
  const path = join(dir, 'trusted-root.json');
  writeFileSync(path, JSON.stringify({ mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1' }));
  return path;
}
