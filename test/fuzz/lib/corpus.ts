import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The repository root (test/fuzz/lib → ../../..). */
export const REPO_ROOT = resolve(import.meta.dirname, '../../..');
export const CORPUS_ROOT = join(REPO_ROOT, 'test/fuzz/corpus');

export interface CorpusInput {
  /** File name inside the target's corpus directory (`regress-…` for crashes found and fixed). */
  name: string;
  data: Uint8Array;
}

/** The committed seed corpus of a target, in name order. */
export function loadCorpus(target: string): CorpusInput[] {
  const dir = join(CORPUS_ROOT, target);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => !n.startsWith('.'))
    .sort()
    .map((name) => ({ name, data: new Uint8Array(readFileSync(join(dir, name))) }));
}
