import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Digest } from '../../oci/digest.js';
import type { OciLayout } from '../../oci/layout.js';
import type { BuiltLayer } from '../executor/state.js';
import { writeFileAtomic } from '../../util/fs.js';

/** What a cached step produced: its layer (absent when the step changed no file). */
export interface CacheEntry {
  layer?: BuiltLayer;
  createdAt: string;
}

/**
 * The local build cache: one small JSON file per key under `<store>/build-cache/`, pointing at a
 * layer blob kept in the store's layout. An entry whose blob has gone (pruned) is a miss. Writes are
 * atomic (temp file + rename), so concurrent builds at worst both compute the same layer.
 */
export class LocalBuildCache {
  readonly dir: string;
  readonly #layout: OciLayout;

  constructor(storeRoot: string, layout: OciLayout) {
    this.dir = join(storeRoot, 'build-cache');
    this.#layout = layout;
  }

  async get(key: string): Promise<CacheEntry | undefined> {
    let entry: CacheEntry;
    try {
      entry = JSON.parse(await readFile(join(this.dir, `${key}.json`), 'utf8')) as CacheEntry;
    } catch {
      return undefined;
    }
    if (entry.layer && !(await this.#layout.hasBlob(entry.layer.digest as Digest, entry.layer.size))) return undefined;
    return entry;
  }

  async put(key: string, entry: CacheEntry): Promise<void> {
    await writeFileAtomic(join(this.dir, `${key}.json`), JSON.stringify(entry));
  }
}
