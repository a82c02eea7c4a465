import { Transform, type TransformCallback } from 'node:stream';
import type { Digest } from '../oci/digest.js';

/** What a copy reports as it goes; the CLI turns these into bars (TTY) or JSON lines. */
export type ProgressEvent =
  | { type: 'blob'; phase: 'start'; digest: Digest; size: number; mediaType: string }
  | { type: 'blob'; phase: 'progress'; digest: Digest; size: number; bytes: number }
  | { type: 'blob'; phase: 'done'; digest: Digest; size: number; bytes: number; ms: number }
  | { type: 'blob'; phase: 'reused'; digest: Digest; size: number; mediaType?: string }
  | { type: 'blob'; phase: 'retry'; digest: Digest; size: number; attempt: number; error: string }
  | { type: 'manifest'; digest: Digest; mediaType: string; platform?: string; top: boolean }
  | { type: 'skipped'; digest: Digest; reason: string };

export type ProgressListener = (event: ProgressEvent) => void;

/** Counts bytes as they pass and reports at most every `intervalMs`, without changing the flow. */
export class ProgressMeter extends Transform {
  #bytes = 0;
  #last = 0;
  readonly #report: (bytes: number) => void;
  readonly #intervalMs: number;

  constructor(report: (bytes: number) => void, intervalMs = 200) {
    super();
    this.#report = report;
    this.#intervalMs = intervalMs;
  }

  get bytes(): number {
    return this.#bytes;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#bytes += chunk.length;
    const now = Date.now();
    if (now - this.#last >= this.#intervalMs) {
      this.#last = now;
      this.#report(this.#bytes);
    }
    cb(null, chunk);
  }
}
