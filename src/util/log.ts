import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * The process-wide structured logger. Logs go to stderr as JSON (stdout belongs to command output);
 * the level comes from STEVEDORE_LOG_LEVEL or `--log-level`. Fields, never string-built messages,
 * and never a credential.
 */
export const rootLogger: Logger = pino(
  {
    name: 'stevedore',
    level: process.env.STEVEDORE_LOG_LEVEL ?? 'warn',
    redact: { paths: ['password', 'token', 'authorization', '*.password', '*.token', '*.authorization'], censor: '[redacted]' },
  },
  pino.destination({ fd: 2, sync: true }),
);

export function setLogLevel(level: string): void {
  rootLogger.level = level;
}
