/**
 * Runs the real `stevedore` command (`node bin/stevedore.js`, which loads the compiled `dist/`) as
 * a child process, the way a user or a build pod does.
 *
 *   const r = await stevedore(['inspect', `docker://${reg.host}/app:1`]);
 *   expect(r.code, r.stderr).toBe(0);
 *
 * `dist/` is rebuilt (`tsc -p tsconfig.build.json`) at most once per test process, and only when a
 * file under `src/` is newer than `dist/cli/main.js`; a lock directory keeps two test workers from
 * compiling into `dist/` at the same time.
 *
 * Every run gets a private, empty credentials environment: REGISTRY_AUTH_FILE points at an empty
 * auth file, and XDG_RUNTIME_DIR, XDG_CONFIG_HOME and DOCKER_CONFIG at an empty directory, so
 * credentials stored on the machine never leak into a test (Stevedore falls through to those
 * files when the first one has no match). Pass `env` to override any of them.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, rmdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand, type CommandResult } from '../../hack/lib/harness/procs.js';
import { sleep } from '../../hack/lib/harness/net.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(REPO_ROOT, 'bin', 'stevedore.js');
const MAIN_JS = join(REPO_ROOT, 'dist', 'cli', 'main.js');
const LOCK_DIR = join(REPO_ROOT, 'dist', '.stevedore-test-build.lock');

let built: Promise<void> | undefined;
const temps = new TempDirs();
let envDir: Promise<{ dir: string; authFile: string }> | undefined;

async function newestMtime(dir: string): Promise<number> {
  let newest = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, await newestMtime(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, (await stat(p)).mtimeMs);
  }
  return newest;
}

async function isStale(): Promise<boolean> {
  if (!existsSync(MAIN_JS)) return true;
  return (await newestMtime(join(REPO_ROOT, 'src'))) > (await stat(MAIN_JS)).mtimeMs;
}

async function build(): Promise<void> {
  await mkdir(dirname(LOCK_DIR), { recursive: true });
  // mkdir is atomic: whoever creates the lock dir compiles; the others wait, then re-check.
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      await mkdir(LOCK_DIR);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // A lock older than two minutes belongs to a killed worker.
      const age =
        Date.now() -
        (await stat(LOCK_DIR).then(
          (s) => s.mtimeMs,
          () => Date.now(),
        ));
      if (age > 120_000) await rmdir(LOCK_DIR).catch(() => {});
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${LOCK_DIR}`);
      await sleep(200);
    }
  }
  try {
    if (!(await isStale())) return;
    const res = await runCommand('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO_ROOT, timeoutMs: 120_000 });
    // tsc emits even when some unrelated file has type errors; what matters is a fresh dist/.
    if (!existsSync(MAIN_JS) || (await isStale())) {
      throw new Error(`building dist/ failed (exit ${res.code}):\n${res.stdout}\n${res.stderr}`);
    }
  } finally {
    await rmdir(LOCK_DIR).catch(() => {});
  }
}

/** Compiles `src/` into `dist/` if needed; once per process. */
export function ensureBuilt(): Promise<void> {
  built ??= build();
  return built;
}

async function credentialsEnv(): Promise<{ dir: string; authFile: string }> {
  envDir ??= (async () => {
    const dir = await temps.make('cli-env');
    const authFile = join(dir, 'empty-auth.json');
    await writeFile(authFile, JSON.stringify({ auths: {} }));
    return { dir, authFile };
  })();
  return envDir;
}

/** A fresh temp dir removed by `cleanupCli()`. */
export function cliTempDir(prefix: string): Promise<string> {
  return temps.make(prefix);
}

/** Removes the temp dirs this helper made; call from `afterAll`. */
export async function cleanupCli(): Promise<void> {
  envDir = undefined;
  await temps.cleanup();
}

export interface StevedoreRun {
  env?: NodeJS.ProcessEnv;
  /** Written to stdin, which is then closed. */
  input?: string | Buffer;
  timeoutMs?: number;
}

/** `node bin/stevedore.js ARGS...`; resolves with exit code and output, never rejects on failure. */
export async function stevedore(args: readonly string[], opts: StevedoreRun = {}): Promise<CommandResult> {
  await ensureBuilt();
  const { dir, authFile } = await credentialsEnv();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    REGISTRY_AUTH_FILE: authFile,
    XDG_RUNTIME_DIR: join(dir, 'run'),
    XDG_CONFIG_HOME: join(dir, 'config'),
    DOCKER_CONFIG: join(dir, 'docker'),
    ...opts.env,
  };
  return runCommand(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env, input: opts.input, timeoutMs: opts.timeoutMs ?? 60_000 });
}

/** The JSON objects among an output's lines (others are skipped). */
export function jsonLines(text: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    try {
      out.push(JSON.parse(t) as Record<string, unknown>);
    } catch {
      // not a JSON line
    }
  }
  return out;
}
