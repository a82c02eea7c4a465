import { readFileSync } from 'node:fs';

/** The caller's own hard limits, which no container may be asked to exceed. */
export interface CallerLimits {
  nofile: number;
  nproc: number;
}

const UNLIMITED = 2 ** 53;

function hardLimit(text: string, label: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(label));
  if (!line) return undefined;
  const fields = line.slice(label.length).trim().split(/\s+/);
  const hard = fields[1];
  if (hard === undefined) return undefined;
  return hard === 'unlimited' ? UNLIMITED : Number(hard);
}

/** Parses /proc/self/limits (the text is a parameter for tests). */
export function parseProcLimits(text: string): CallerLimits {
  return {
    nofile: hardLimit(text, 'Max open files') ?? 1024,
    nproc: hardLimit(text, 'Max processes') ?? 4096,
  };
}

export function callerLimits(): CallerLimits {
  try {
    return parseProcLimits(readFileSync('/proc/self/limits', 'utf8'));
  } catch {
    return { nofile: 1024, nproc: 4096 };
  }
}
