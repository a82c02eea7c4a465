/**
 * A Git source for a build: a shallow fetch of one revision into an empty directory, with the
 * `git` binary. Credentials come from a directory holding a Secret's keys (username + password for
 * HTTPS, ssh-privatekey + known_hosts for SSH) and reach git through its environment, never its
 * arguments, so they do not show in the process list.
 */
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { InvalidInputError, StevedoreError } from '../../util/errors.js';

const exec = promisify(execFile);

export interface GitFetchOptions {
  /** Directory with a Secret's keys: `username`/`password`, or `ssh-privatekey` (+ `known_hosts`). */
  credentialsDir?: string;
  signal?: AbortSignal;
}

export interface FetchedGit {
  /** The full commit SHA that was checked out. */
  commit: string;
}

export class GitError extends StevedoreError {
  constructor(message: string) {
    super('GIT_FAILED', message);
  }
}

async function readKey(dir: string, key: string): Promise<string | undefined> {
  try {
    return (await readFile(join(dir, key), 'utf8')).trim();
  } catch {
    return undefined;
  }
}

/** Git configuration and environment for the credentials found in `dir`. */
async function credentialEnv(dir: string | undefined): Promise<Record<string, string>> {
  if (!dir) return {};
  const env: Record<string, string> = {};
  const user = await readKey(dir, 'username');
  const password = await readKey(dir, 'password');
  if (password !== undefined) {
    const basic = Buffer.from(`${user ?? 'git'}:${password}`).toString('base64');
    env.GIT_CONFIG_COUNT = '1';
    env.GIT_CONFIG_KEY_0 = 'http.extraHeader';
    env.GIT_CONFIG_VALUE_0 = `Authorization: Basic ${basic}`;
  }
  const keyPath = join(dir, 'ssh-privatekey');
  if (
    await stat(keyPath).then(
      () => true,
      () => false,
    )
  ) {
    const known = join(dir, 'known_hosts');
    const hasKnown = await stat(known).then(
      () => true,
      () => false,
    );
    // Without known_hosts the host key cannot be checked; refuse rather than trust on first use.
    if (!hasKnown) throw new InvalidInputError(`${dir}: an ssh-privatekey needs a known_hosts key next to it`);
    env.GIT_SSH_COMMAND = `ssh -i ${keyPath} -o IdentitiesOnly=yes -o UserKnownHostsFile=${known} -o StrictHostKeyChecking=yes`;
  }
  return env;
}

async function git(args: string[], cwd: string, env: Record<string, string>, signal?: AbortSignal): Promise<string> {
  try {
    const { stdout } = await exec('git', args, {
      cwd,
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0', ...env },
      signal,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout.trim();
  } catch (err) {
    const e = err as { stderr?: string; message: string; code?: string };
    if (e.code === 'ENOENT') throw new GitError('git is not installed');
    const detail = (e.stderr ?? e.message).trim().split('\n').slice(-3).join('; ');
    throw new GitError(`git ${args[0]} failed: ${detail}`);
  }
}

/** Fetches `revision` (branch, tag or commit; default the remote's HEAD) of `url` into `dir`. */
export async function fetchGit(url: string, revision: string | undefined, dir: string, o: GitFetchOptions = {}): Promise<FetchedGit> {
  if (!url) throw new InvalidInputError('git URL is empty');
  const env = await credentialEnv(o.credentialsDir);
  await git(['init', '--quiet', dir], dir, env, o.signal);
  await git(['remote', 'add', 'origin', url], dir, env, o.signal);
  await git(['fetch', '--quiet', '--depth=1', 'origin', revision || 'HEAD'], dir, env, o.signal);
  await git(['-c', 'advice.detachedHead=false', 'checkout', '--quiet', 'FETCH_HEAD'], dir, env, o.signal);
  await git(['submodule', 'update', '--quiet', '--init', '--recursive', '--depth=1'], dir, env, o.signal);
  const commit = await git(['rev-parse', 'HEAD'], dir, env, o.signal);
  return { commit };
}
