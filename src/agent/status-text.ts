/** Small pure helpers that turn a finished container into ContainerRun status fields. */
import { constants } from 'node:os';

const SIGNAL_NAMES = new Map<number, string>(Object.entries(constants.signals).map(([name, n]) => [n, name] as [number, string]));

/** The signal behind an exit code of 128+n, as `SIGKILL`; undefined for ordinary exit codes. */
export function signalOfExitCode(exitCode: number): string | undefined {
  if (exitCode <= 128 || exitCode > 128 + 64) return undefined;
  return SIGNAL_NAMES.get(exitCode - 128);
}

export const LOG_TAIL_LINES = 50;
/** The CRD's limit on status.logTail. */
export const LOG_TAIL_MAX_CHARS = 65536;

/** The last 50 lines, newline-terminated, cut from the front to fit the status field. */
export function logTail(lines: readonly string[]): string {
  const text = lines
    .slice(-LOG_TAIL_LINES)
    .map((l) => `${l}\n`)
    .join('');
  return text.length > LOG_TAIL_MAX_CHARS ? text.slice(text.length - LOG_TAIL_MAX_CHARS) : text;
}

/** Delay before attempt n+1 (as a kubelet's crash-loop back-off: 10 s doubling, 5 min cap). */
export function restartDelayMs(restartCount: number, baseMs = 10_000, maxMs = 300_000): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, restartCount));
}
