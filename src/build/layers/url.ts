import { createWriteStream } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, utimes } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { VerifyingStream, parseDigest } from '../../oci/digest.js';
import { InvalidInputError, StevedoreError, errorMessage } from '../../util/errors.js';
import { rootLogger } from '../../util/log.js';

const log = rootLogger.child({ component: 'build-add-url' });

export interface FetchUrlOptions {
  /** `ADD --checksum=sha256:<hex>`: the download must have exactly this digest. */
  checksum?: string;
  /** A fresh directory is made below this for the download. */
  workDir: string;
  signal?: AbortSignal;
}

export interface FetchedUrl {
  /** The downloaded file, mode 0600 as Docker gives ADD'ed URLs, mtime from Last-Modified when sent. */
  path: string;
  /** The file name Docker would use below a directory destination (`basename(path)` too). */
  name: string;
  /** Last-Modified in seconds since the epoch, when the server sent it. */
  mtime?: number;
}

/** The URL without user:password, for messages and logs. */
function redact(url: URL): string {
  if (!url.username && !url.password) return url.href;
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  return copy.href;
}

/** A Content-Disposition filename, else the last segment of the URL's path, as BuildKit names downloads. */
export function downloadName(url: URL, contentDisposition: string | null): string {
  const fromHeader = contentDisposition ? /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(contentDisposition)?.[1] : undefined;
  let candidate = fromHeader ? decodeURIComponentSafe(fromHeader) : '';
  if (!candidate) candidate = decodeURIComponentSafe(posix.basename(url.pathname));
  // Never a path: only the last component, and nothing that means "here" or "up".
  candidate = candidate.split('/').pop() ?? '';
  if (candidate === '' || candidate === '.' || candidate === '..' || candidate.includes('\0')) return 'download';
  return candidate;
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * Downloads `ADD <url>` into a fresh directory below `workDir`, streaming to disk and hashing as it
 * goes; with `checksum` a mismatch fails and leaves nothing behind. Only http and https are fetched.
 * The caller copies the file with writeCopyLayer from `{ dir: dirname(path) }`, sources `[name]`,
 * without archive extraction (Docker never unpacks downloads).
 */
export async function fetchUrl(url: string, opts: FetchUrlOptions): Promise<FetchedUrl> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidInputError(`ADD ${JSON.stringify(url)}: not a valid URL`);
  }
  const shown = redact(parsed);
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new InvalidInputError(`ADD ${shown}: only http and https URLs can be downloaded`);
  }
  const expected = opts.checksum ? parseChecksum(opts.checksum, shown) : undefined;
  await mkdir(opts.workDir, { recursive: true });
  const dir = await mkdtemp(join(opts.workDir, 'url-'));
  const started = Date.now();
  try {
    let res: Response;
    try {
      // fetch refuses credentials in the URL; they travel as Basic auth instead (never logged).
      const headers: Record<string, string> = {};
      if (parsed.username || parsed.password) {
        const user = decodeURIComponentSafe(parsed.username);
        const pass = decodeURIComponentSafe(parsed.password);
        headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
      }
      res = await fetch(shown, { redirect: 'follow', headers, ...(opts.signal ? { signal: opts.signal } : {}) });
    } catch (err) {
      if (err instanceof Error && err.name === 'AbortError') throw err;
      throw new StevedoreError('ADD_URL_FAILED', `ADD ${shown}: ${errorMessage((err as { cause?: unknown }).cause ?? err)}`, { cause: err, retryable: true });
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      throw new StevedoreError('ADD_URL_FAILED', `ADD ${shown}: HTTP ${res.status} ${res.statusText}`.trim(), {
        retryable: res.status >= 500 || res.status === 429,
      });
    }
    const name = downloadName(parsed, res.headers.get('content-disposition'));
    const path = join(dir, name);
    const verify = new VerifyingStream({ ...(expected ? { expected } : {}), what: `ADD ${shown} (--checksum)` });
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), verify, createWriteStream(path, { mode: 0o600 }));
    await chmod(path, 0o600);
    const lastModified = res.headers.get('last-modified');
    const ms = lastModified ? Date.parse(lastModified) : NaN;
    const mtime = Number.isFinite(ms) ? Math.floor(ms / 1000) : undefined;
    if (mtime !== undefined) await utimes(path, mtime, mtime);
    log.debug({ url: shown, bytes: verify.bytes, digest: verify.digest, ms: Date.now() - started }, 'ADD url downloaded');
    return { path, name, ...(mtime !== undefined ? { mtime } : {}) };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

function parseChecksum(checksum: string, shown: string): `${string}:${string}` {
  try {
    return parseDigest(checksum).digest;
  } catch (err) {
    throw new InvalidInputError(`ADD ${shown}: --checksum ${JSON.stringify(checksum)}: ${errorMessage(err)}`);
  }
}
