import { spawn } from 'node:child_process';
import { StevedoreError } from '../../util/errors.js';
import { readTar } from '../../util/tar/read.js';

const OPAQUE_KEYS = ['SCHILY.xattr.trusted.overlay.opaque', 'SCHILY.xattr.user.overlay.opaque'];

/**
 * Which of `dirs` (relative to `upperDir`) overlayfs marked opaque (`trusted.overlay.opaque` or, for
 * `userxattr` mounts in a user namespace, `user.overlay.opaque`, equal to `y`).
 *
 * Node cannot read extended attributes, so GNU tar reads them: one process for the whole layer,
 * asked for directories only (`--no-recursion`), so no file content is read, and only the two
 * overlay attributes are included. Its output is parsed here as any tar stream.
 */
export async function opaqueDirectories(upperDir: string, dirs: readonly string[], signal?: AbortSignal): Promise<Set<string>> {
  const found = new Set<string>();
  if (dirs.length === 0) return found;
  const child = spawn(
    'tar',
    ['--xattrs', '--xattrs-include=trusted.overlay.opaque', '--xattrs-include=user.overlay.opaque', '--no-recursion', '--null', '-T', '-', '-cf', '-'],
    { cwd: upperDir, stdio: ['pipe', 'pipe', 'pipe'], ...(signal ? { signal } : {}) },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
  exited.catch(() => undefined);
  child.stdin.on('error', () => undefined); // a tar that died early is reported through its exit
  child.stdin.end(Buffer.from(dirs.map((d) => `./${d}\0`).join('')));
  try {
    await readTar(child.stdout, async (entry) => {
      const pax = (entry.header.pax ?? {}) as Record<string, string>;
      if (OPAQUE_KEYS.some((k) => pax[k] === 'y')) found.add(entry.header.name.replace(/^\.\//, '').replace(/\/+$/, ''));
    });
    const code = await exited;
    if (code !== 0) throw new Error(`exit ${code}: ${stderr.trim()}`);
  } catch (readErr) {
    child.kill();
    // A tar that could not start only closes its output: its spawn error says why.
    const err =
      (await exited.then(
        () => undefined,
        (e: unknown) => e,
      )) ?? readErr;
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'tar is not installed' : (err as Error).message;
    throw new StevedoreError('OVERLAY_XATTRS_FAILED', `reading overlay opaque markers in ${upperDir} needs GNU tar with --xattrs: ${why}`, { cause: err });
  }
  return found;
}
