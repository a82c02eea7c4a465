/** Nanoseconds back to Go's notation, for HEALTHCHECK messages (parsing is util/duration's). */
export function formatDuration(ns: number): string {
  if (ns % 1e9 === 0) return `${ns / 1e9}s`;
  if (ns % 1e6 === 0) return `${ns / 1e6}ms`;
  return `${ns}ns`;
}
