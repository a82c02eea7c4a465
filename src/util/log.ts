import { createRequire } from 'node:module';
import type { ChildLoggerOptions, Logger } from 'pino';

export type { Logger };

/**
 * The process-wide structured logger. Logs go to stderr as JSON (stdout belongs to command output);
 * the level comes from STEVEDORE_LOG_LEVEL or `--log-level`. Fields, never string-built messages,
 * and never a credential.
 *
 * pino (with sonic-boom and thread-stream) is slow to load next to a warm `run` of `true`, which at
 * the default level (warn) logs nothing. So `rootLogger` and its children are stand-ins
 * that know their level and bindings and create the real pino loggers (loading pino synchronously,
 * it is CommonJS) the first time a message at an enabled level is logged or any other part of the
 * pino API is used. Levels behave as pino's: a child follows its parent's level until its own is set.
 */
export const rootLogger: Logger = lazyLogger(undefined, {}, process.env.STEVEDORE_LOG_LEVEL ?? 'warn');

export function setLogLevel(level: string): void {
  rootLogger.level = level;
}

function createRoot(level: string): Logger {
  const { pino } = createRequire(import.meta.url)('pino') as typeof import('pino');
  return pino(
    {
      name: 'stevedore',
      level,
      redact: { paths: ['password', 'token', 'authorization', '*.password', '*.token', '*.authorization'], censor: '[redacted]' },
    },
    pino.destination({ fd: 2, sync: true }),
  );
}

/** pino's default levels; anything else (custom levels, a bad name) is left to pino itself. */
const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };
const METHODS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);
const noop = (): void => undefined;

interface LazyNode {
  parent: LazyNode | undefined;
  bindings: Record<string, unknown>;
  options: ChildLoggerOptions | undefined;
  /** Set on this logger (or given as the child's `level` option); else the parent's applies. */
  ownLevel: string | undefined;
  real: Logger | undefined;
}

function levelOf(node: LazyNode): string {
  return node.real?.level ?? node.ownLevel ?? levelOf(node.parent!);
}

function materialize(node: LazyNode): Logger {
  if (node.real) return node.real;
  if (!node.parent) node.real = createRoot(node.ownLevel!);
  else {
    const real = materialize(node.parent).child(node.bindings, node.options);
    if (node.ownLevel !== undefined && node.ownLevel !== node.options?.level) real.level = node.ownLevel;
    node.real = real;
  }
  return node.real;
}

function lazyLogger(parent: LazyNode | undefined, bindings: Record<string, unknown>, ownLevel: string | undefined, options?: ChildLoggerOptions): Logger {
  const node: LazyNode = { parent, bindings, options, ownLevel, real: undefined };
  const forward = (prop: string | symbol): unknown => {
    const real = materialize(node);
    const value = Reflect.get(real, prop, real) as unknown;
    return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(real) : value;
  };
  const handler: ProxyHandler<object> = {
    get(_target, prop) {
      if (node.real || typeof prop !== 'string') return forward(prop);
      const level = levelOf(node);
      if (!(level in LEVELS)) return forward(prop);
      if (METHODS.has(prop)) return LEVELS[prop]! >= LEVELS[level]! ? forward(prop) : noop;
      switch (prop) {
        case 'level':
          return level;
        case 'levelVal':
          return LEVELS[level];
        case 'isLevelEnabled':
          return (l: string) => (l in LEVELS ? LEVELS[l]! >= LEVELS[level]! : materialize(node).isLevelEnabled(l));
        case 'child':
          return (childBindings: Record<string, unknown>, childOptions?: ChildLoggerOptions) =>
            // Options other than a level (serializers, redaction, msgPrefix...) are pino's business.
            childOptions && Object.keys(childOptions).some((k) => k !== 'level')
              ? materialize(node).child(childBindings, childOptions)
              : lazyLogger(node, childBindings, childOptions?.level, childOptions);
        default:
          return forward(prop);
      }
    },
    set(_target, prop, value) {
      if (!node.real && prop === 'level' && typeof value === 'string' && value in LEVELS) {
        node.ownLevel = value;
        return true;
      }
      const real = materialize(node);
      return Reflect.set(real, prop, value, real);
    },
    has(_target, prop) {
      return Reflect.has(materialize(node), prop);
    },
  };
  return new Proxy({}, handler) as Logger;
}
