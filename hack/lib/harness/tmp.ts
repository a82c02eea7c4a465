/**
 * Temporary directories for tests. Every directory lives under the OS temp dir with a recognisable
 * `stevedore-` prefix, so a leak after a crashed run is easy to spot and delete by hand.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Creates a fresh, empty directory `$TMPDIR/stevedore-<prefix>-XXXXXX` and returns its path. */
export async function makeTempDir(prefix: string): Promise<string> {
  const safe = prefix.replace(/[^A-Za-z0-9_.-]/g, '_');
  return mkdtemp(join(tmpdir(), `stevedore-${safe}-`));
}

/** Removes a directory tree; missing directories are fine (cleanup may run twice). */
export async function removeTempDir(dir: string): Promise<void> {
  // maxRetries: a registry that was just killed may still be closing files for a moment.
  await rm(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 });
}

/**
 * A set of temp dirs cleaned up together, for `beforeAll`/`afterAll` pairs:
 *
 *   const tmp = new TempDirs();
 *   afterAll(() => tmp.cleanup());
 *   const dir = await tmp.make('layout');
 */
export class TempDirs {
  readonly #dirs: string[] = [];

  async make(prefix: string): Promise<string> {
    const dir = await makeTempDir(prefix);
    this.#dirs.push(dir);
    return dir;
  }

  async cleanup(): Promise<void> {
    const dirs = this.#dirs.splice(0);
    await Promise.all(dirs.map((d) => removeTempDir(d)));
  }
}
