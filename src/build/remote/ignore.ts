/**
 * The ignore rules for packing a context: `<Containerfile>.containerignore`, `.containerignore` or
 * `.dockerignore`, with Docker's semantics (build/context's loader, the same one local builds use).
 */
import { loadIgnore } from '../context/ignore.js';
import type { ContextIgnore } from './pack.js';

export function loadContextIgnore(dir: string, containerfile?: string): Promise<ContextIgnore> {
  return loadIgnore(dir, containerfile);
}
