import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { mkdir, readFile, realpath, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { excludeMatcher, matchSources, walkSource, type CopyRoot, type CopySpec } from '../layers/copy-plan.js';
import { hashCopyInputs } from '../layers/copy.js';

/** What identifies a file's state without reading it: if none of this changed, neither did the content. */
function statKey(st: Stats): string {
  return `${st.dev}:${st.ino}:${st.mode}:${st.uid}:${st.gid}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

/**
 * A fingerprint of a COPY's inputs from `lstat` alone (the same walk as the content hash: globs,
 * ignore rules, --exclude), so an unchanged rebuild does not read the context again. The ctime is
 * part of it, so any write, chmod or rename shows; the content hash stays the cache key itself, and
 * a touched-but-unchanged file only costs re-hashing it.
 */
export async function statFingerprint(root: CopyRoot, spec: CopySpec): Promise<string> {
  const h = createHash('sha256');
  const dir = await realpath(root.dir);
  h.update(JSON.stringify({ dir, spec, preserve: !!root.preserveOwnership }));
  const exclude = excludeMatcher(spec);
  for (const src of await matchSources({ ...root, dir }, spec)) {
    h.update(JSON.stringify([src.what, src.rel, src.host, statKey(src.st)]));
    if (src.st.isDirectory()) {
      await walkSource(src.host, src.rel, root.ignore, exclude, async (rel, _host, st) => {
        h.update(JSON.stringify([rel, statKey(st)]));
      });
    }
  }
  return h.digest('hex');
}

/** The remembered input hash for a COPY, if its inputs are exactly as last time (by stat fingerprint). */
export async function knownCopyInputs(cacheDir: string, root: CopyRoot, spec: CopySpec): Promise<{ fingerprint: string; hash?: string }> {
  const fingerprint = await statFingerprint(root, spec);
  const known = await readFile(join(cacheDir, 'inputs', `${fingerprint}.txt`), 'utf8').catch(() => undefined);
  return known && /^[0-9a-f]{64}$/.test(known) ? { fingerprint, hash: known } : { fingerprint };
}

export async function rememberCopyInputs(cacheDir: string, fingerprint: string, hash: string): Promise<void> {
  await mkdir(join(cacheDir, 'inputs'), { recursive: true });
  const file = join(cacheDir, 'inputs', `${fingerprint}.txt`);
  const tmp = `${file}.${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, hash);
  await rename(tmp, file);
}

/**
 * `hashCopyInputs`, remembered on disk by stat fingerprint (`<store>/build-cache/inputs/`): the
 * second build of an unchanged context stats its files and reads none of them.
 */
export async function cachedCopyInputs(cacheDir: string, root: CopyRoot, spec: CopySpec): Promise<string> {
  const known = await knownCopyInputs(cacheDir, root, spec);
  if (known.hash) return known.hash;
  const hash = await hashCopyInputs(root, spec);
  await rememberCopyInputs(cacheDir, known.fingerprint, hash);
  return hash;
}
