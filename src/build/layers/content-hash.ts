import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, type Stats } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { SYNC_READ } from './tar-writer.js';

/**
 * sha256 of a file's content, remembered for the life of the process under the file's identity and
 * change time: a rebuild in the same process (several stages copying the same context, or a
 * cache-key pass followed by the layer write) reads each file once.
 */
const cache = new Map<string, string>();
const MAX_CACHED = 200_000;
const SMALL_FILE = 1024 * 1024;

function identity(st: Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

export async function fileContentHash(path: string, st: Stats): Promise<string> {
  const key = identity(st);
  const known = cache.get(key);
  if (known !== undefined) return known;
  const hash = createHash('sha256');
  // A small file in one read: a stream per file costs more than hashing it (contexts of thousands).
  // The smallest in one blocking call (see SYNC_READ): cheaper than the promise API's round trips.
  if (st.size <= SYNC_READ) hash.update(readFileSync(path));
  else if (st.size <= SMALL_FILE) hash.update(await readFile(path));
  else for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  const hex = hash.digest('hex');
  if (cache.size >= MAX_CACHED) cache.clear();
  cache.set(key, hex);
  return hex;
}
