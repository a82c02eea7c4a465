/**
 * Records every module (ESM and CommonJS) a real `stevedore` process loads, through a loader hook
 * (test/cli/module-recorder.mjs). The start-up cost of a short command is its module graph, so
 * tests assert on the graph: unlike a timing, load on the machine cannot flake it.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const TS_HOOKS = resolve(HERE, '..', 'runtime', 'ts-hooks.mjs');
const RECORDER = resolve(HERE, '..', 'cli', 'module-recorder.mjs');
const MAIN = resolve(HERE, '..', '..', 'src', 'cli', 'main.ts');

export interface LoadedModules {
  code: number;
  stderr: string;
  /** Absolute paths (file:// stripped) and builtin names, in load order. */
  modules: string[];
}

/** Runs `code` (an ES module body) on the TypeScript sources with the recorder; `logDir` holds the record. */
export function recordModules(logDir: string, code: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<LoadedModules> {
  const log = join(logDir, `modules-${Math.random().toString(36).slice(2)}.txt`);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', TS_HOOKS, '--import', RECORDER, '--input-type=module', '-e', code, '--', ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, MODULE_LOG: log, ...env },
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (exit) => {
      clearTimeout(timer);
      readFile(log, 'utf8').then(
        (text) =>
          resolvePromise({
            code: exit ?? 255,
            stderr,
            modules: text
              .split('\n')
              .filter(Boolean)
              .map((u) => u.replace(/^file:\/\//, '')),
          }),
        reject,
      );
    });
  });
}

/** Runs `stevedore ARGS` (cli/main.ts from the sources) with the recorder. */
export function recordCli(logDir: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<LoadedModules> {
  return recordModules(logDir, `const m = await import(${JSON.stringify(MAIN)}); await m.main(['node', 'stevedore', ...process.argv.slice(1)]);`, args, env);
}
