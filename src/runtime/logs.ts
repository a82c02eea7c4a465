import { createWriteStream, openSync, renameSync, statSync, type WriteStream } from 'node:fs';

/** Lines longer than this are split into partial (`P`) records, as the kubelet does. */
export const MAX_LOG_LINE = 16 * 1024;

const EPOCH_NS = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

/** RFC 3339 with nanoseconds, UTC: `2026-01-02T03:04:05.123456789Z`. */
export function rfc3339Nano(ns: bigint = EPOCH_NS + process.hrtime.bigint()): string {
  const ms = Number(ns / 1_000_000n);
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0');
  return `${new Date(ms).toISOString().slice(0, 19)}.${frac}Z`;
}

/** Opened at once (not when the stream gets round to it), so the file exists for a rotation's rename. */
function openLog(path: string): WriteStream {
  return createWriteStream(path, { fd: openSync(path, 'a', 0o600) });
}

/**
 * A log in the Kubernetes `k8s-file` (CRI) format: `<RFC3339Nano> <stream> <P|F> <text>` per
 * record; a line longer than MAX_LOG_LINE is written as `P` records ended by an `F`; text left
 * without a newline when the stream ends is written as `P` (no `F` follows: the line has no end).
 */
export class K8sFileLog {
  readonly path: string;
  #out: WriteStream;
  readonly #pending: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' };
  readonly #maxBytes: number | undefined;
  #bytes: number;
  readonly #closing: Promise<void>[] = [];

  /**
   * `maxBytes`: when the file grows past it, it is rotated as the kubelet rotates container logs:
   * renamed to `<path>.1` (replacing the previous one) and a new file started, so a chatty
   * container keeps at most about twice that on the node's disk.
   */
  constructor(path: string, opts: { maxBytes?: number } = {}) {
    this.path = path;
    this.#maxBytes = opts.maxBytes;
    this.#bytes = (() => {
      try {
        return statSync(path).size;
      } catch {
        return 0;
      }
    })();
    this.#out = openLog(path);
  }

  write(stream: 'stdout' | 'stderr', chunk: Buffer | string): void {
    let buf = this.#pending[stream] + chunk.toString();
    for (;;) {
      const nl = buf.indexOf('\n');
      if (nl < 0) break;
      this.#line(stream, buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
    while (buf.length > MAX_LOG_LINE) {
      this.#record(stream, 'P', buf.slice(0, MAX_LOG_LINE));
      buf = buf.slice(MAX_LOG_LINE);
    }
    this.#pending[stream] = buf;
  }

  #line(stream: 'stdout' | 'stderr', line: string): void {
    while (line.length > MAX_LOG_LINE) {
      this.#record(stream, 'P', line.slice(0, MAX_LOG_LINE));
      line = line.slice(MAX_LOG_LINE);
    }
    this.#record(stream, 'F', line);
  }

  #record(stream: string, tag: 'P' | 'F', text: string): void {
    const record = `${rfc3339Nano()} ${stream} ${tag} ${text}\n`;
    if (this.#maxBytes !== undefined && this.#bytes > 0 && this.#bytes + Buffer.byteLength(record) > this.#maxBytes) this.#rotate();
    this.#out.write(record);
    this.#bytes += Buffer.byteLength(record);
  }

  #rotate(): void {
    // The open stream follows the renamed file and flushes what it holds into it.
    renameSync(this.path, `${this.path}.1`);
    const old = this.#out;
    this.#closing.push(new Promise<void>((resolve) => old.end(() => resolve())));
    this.#out = openLog(this.path);
    this.#bytes = 0;
  }

  /**
   * Writes text left without a newline as a partial (`P`) record, as conmon does: a reader then
   * prints it without a newline (the kubelet's CRI reader and `logs` alike), and closes the file.
   */
  async close(): Promise<void> {
    for (const s of ['stdout', 'stderr'] as const) {
      if (this.#pending[s] !== '') this.#record(s, 'P', this.#pending[s]);
      this.#pending[s] = '';
    }
    await Promise.all(this.#closing);
    await new Promise<void>((resolve, reject) => this.#out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
}

/** Parses k8s-file records back (for `logs` and tests). */
export function parseK8sLog(text: string): { time: string; stream: 'stdout' | 'stderr'; tag: 'P' | 'F'; text: string }[] {
  const out: { time: string; stream: 'stdout' | 'stderr'; tag: 'P' | 'F'; text: string }[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\S+) (stdout|stderr) ([PF]) (.*)$/.exec(line);
    if (m) out.push({ time: m[1]!, stream: m[2] as 'stdout' | 'stderr', tag: m[3] as 'P' | 'F', text: m[4]! });
  }
  return out;
}
