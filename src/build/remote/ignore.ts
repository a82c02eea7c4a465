/**
 * The ignore rules for packing a context: build/context's loader (`.containerignore`/.dockerignore,
 * Docker's semantics) when it is available in this build of Stevedore, else nothing is ignored.
 */
import type { ContextIgnore } from './pack.js';

export async function loadContextIgnore(dir: string, containerfile?: string): Promise<ContextIgnore | undefined> {
  const path = '../context/ignore.js';
  let mod: { loadIgnore?: (dir: string, containerfile?: string) => Promise<ContextIgnore> };
  try {
    mod = (await import(path)) as typeof mod;
  } catch {
    return undefined;
  }
  return mod.loadIgnore ? mod.loadIgnore(dir, containerfile) : undefined;
}
