/**
 * Per-mirror metrics, labelled by the ImageMirror's namespace and name, for alerts such as "no
 * successful sync for 2 h" or "a mirror keeps failing". They live in the controller's metrics
 * registry (served on /metrics) and are removed when the mirror is deleted, so a deleted mirror
 * leaves no stale series behind.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

const LABELS = ['namespace', 'name'] as const;

export type SyncOutcome = 'succeeded' | 'partial' | 'failed';

export class ImageMirrorMetrics {
  readonly lastSuccess: Gauge<'namespace' | 'name'>;
  readonly lastSync: Gauge<'namespace' | 'name'>;
  readonly syncs: Counter<'namespace' | 'name' | 'result'>;
  readonly imagesCopied: Counter<'namespace' | 'name'>;
  readonly failures: Counter<'namespace' | 'name'>;
  readonly bytes: Counter<'namespace' | 'name'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.lastSuccess = new Gauge({
      name: 'stevedore_imagemirror_last_success_timestamp_seconds',
      help: 'Unix time at which the last sync of the ImageMirror that had no failed or denied tag finished.',
      labelNames: LABELS,
      registers,
    });
    this.lastSync = new Gauge({
      name: 'stevedore_imagemirror_last_sync_timestamp_seconds',
      help: 'Unix time at which the last sync of the ImageMirror finished, whatever its outcome.',
      labelNames: LABELS,
      registers,
    });
    this.syncs = new Counter({
      name: 'stevedore_imagemirror_syncs_total',
      help: 'Syncs of the ImageMirror by result: succeeded, partial (some tags failed or were denied), failed (the sync as a whole).',
      labelNames: [...LABELS, 'result'],
      registers,
    });
    this.imagesCopied = new Counter({
      name: 'stevedore_imagemirror_images_copied_total',
      help: 'Tags the ImageMirror copied (written at the destination; unchanged tags are not counted).',
      labelNames: LABELS,
      registers,
    });
    this.failures = new Counter({
      name: 'stevedore_imagemirror_failures_total',
      help: 'Failures of the ImageMirror: each failed or policy-denied tag, and each sync that failed as a whole.',
      labelNames: LABELS,
      registers,
    });
    this.bytes = new Counter({
      name: 'stevedore_imagemirror_bytes_total',
      help: 'Blob bytes the ImageMirror wrote to its destination.',
      labelNames: LABELS,
      registers,
    });
  }

  /** Records a finished sync. */
  record(namespace: string, name: string, r: { outcome: SyncOutcome; copied: number; failures: number; bytes: number; at?: Date }): void {
    const l = { namespace, name };
    const now = (r.at ?? new Date()).getTime() / 1000;
    this.lastSync.set(l, now);
    if (r.outcome === 'succeeded') this.lastSuccess.set(l, now);
    this.syncs.inc({ ...l, result: r.outcome });
    // Touched even when 0, so each series exists from the first sync on (rate() and absent() need it).
    this.imagesCopied.inc(l, r.copied);
    this.failures.inc(l, r.failures);
    this.bytes.inc(l, r.bytes);
  }

  /** Drops every series of a deleted mirror. */
  remove(namespace: string, name: string): void {
    const l = { namespace, name };
    for (const m of [this.lastSuccess, this.lastSync, this.imagesCopied, this.failures, this.bytes]) m.remove(l);
    for (const result of ['succeeded', 'partial', 'failed'] as const) this.syncs.remove({ ...l, result });
  }
}
