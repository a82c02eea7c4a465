/**
 * `rootLogger` loads pino only when something is logged at an enabled level (see
 * src/util/log.ts); until then it must behave as the pino logger it stands in for: levels,
 * children that follow their parent's level until they set their own, errors for unknown levels,
 * and the same JSON lines on stderr (redaction included) once it writes.
 */
import { spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino, type Logger } from 'pino';
import { describe, expect, it } from 'vitest';

const HERE = dirname(fileURLToPath(import.meta.url));
const TS_HOOKS = resolve(HERE, '..', 'runtime', 'ts-hooks.mjs');
const LOG_TS = resolve(HERE, '..', '..', 'src', 'util', 'log.ts');

function node(code: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', TS_HOOKS, '--input-type=module', '-e', code], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolvePromise({ code: code ?? 255, stdout, stderr }));
  });
}

/** The same level changes on any logger; returns what was observed along the way. */
function levelScript(root: Logger): unknown[] {
  const seen: unknown[] = [];
  const a = root.child({ a: 1 });
  seen.push(root.level, root.levelVal, a.level, a.isLevelEnabled('info'), a.isLevelEnabled('error'));
  root.level = 'debug';
  seen.push(a.level, a.levelVal, a.isLevelEnabled('debug'));
  a.level = 'error';
  const b = a.child({ b: 2 });
  const c = root.child({ c: 3 }, { level: 'fatal' });
  root.level = 'info';
  seen.push(root.level, a.level, b.level, c.level, c.levelVal);
  b.level = 'silent';
  seen.push(b.levelVal, b.isLevelEnabled('fatal'), a.level);
  seen.push(typeof root.debug, typeof b.warn);
  return seen;
}

describe('the lazy root logger', () => {
  it('keeps levels exactly as a pino logger does, without loading pino', async () => {
    const code = `
      const { rootLogger } = await import(${JSON.stringify(LOG_TS)});
      const { createRequire } = await import('node:module');
      ${levelScript.toString()}
      const seen = levelScript(rootLogger);
      const pinoLoaded = Object.keys(createRequire(import.meta.url).cache).some((p) => p.includes('/node_modules/pino/'));
      process.stdout.write(JSON.stringify({ seen, pinoLoaded }));`;
    const r = await node(code, { STEVEDORE_LOG_LEVEL: 'warn' });
    expect(r.code, r.stderr).toBe(0);
    const { seen, pinoLoaded } = JSON.parse(r.stdout) as { seen: unknown[]; pinoLoaded: boolean };
    const reference = levelScript(pino({ level: 'warn' }, pino.destination({ dest: '/dev/null', sync: true })));
    // JSON turns pino's silent level value (Infinity) into null on both sides.
    expect(seen).toEqual(JSON.parse(JSON.stringify(reference)));
    expect(pinoLoaded).toBe(false);
    expect(r.stderr).toBe('');
  });

  it('writes pino JSON lines to stderr at enabled levels, with secrets redacted, and nothing below the level', async () => {
    const code = `
      const { rootLogger, setLogLevel } = await import(${JSON.stringify(LOG_TS)});
      const log = rootLogger.child({ component: 'test' });
      log.debug({ n: 1 }, 'hidden');
      setLogLevel('info');
      log.debug({ n: 2 }, 'hidden too');
      log.info({ n: 3, password: 'hunter2', auth: { token: 't0k' } }, 'shown');
      rootLogger.warn('root line');`;
    const r = await node(code, { STEVEDORE_LOG_LEVEL: 'warn' });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      level: 30,
      name: 'stevedore',
      component: 'test',
      n: 3,
      password: '[redacted]',
      auth: { token: '[redacted]' },
      msg: 'shown',
    });
    expect(lines[1]).toMatchObject({ level: 40, name: 'stevedore', msg: 'root line' });
    expect(lines[1]).not.toHaveProperty('component');
    expect(r.stderr).not.toContain('hunter2');
  });

  it('refuses an unknown level as pino does', async () => {
    const r = await node(
      `const { setLogLevel } = await import(${JSON.stringify(LOG_TS)}); try { setLogLevel('loud'); } catch (e) { process.stdout.write(e.message); }`,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('unknown level loud');
  });
});
