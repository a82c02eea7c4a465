/** Turns a sync report into ImageMirror status: per-tag outcomes, counts, and the Ready verdict. */
import type { SyncReport } from '../copy/sync.js';
import type { ImageMirrorReason, ImageMirrorStatus, TagAction, TagStatus } from '../k8s/api/imagemirror.js';

const TAG_PATTERN = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

export interface SyncVerdict {
  ready: boolean;
  reason: ImageMirrorReason;
  message: string;
  tags: TagStatus[];
  counts: NonNullable<ImageMirrorStatus['counts']>;
}

function action(a: SyncReport['items'][number]['action']): TagAction {
  // In a dry run the status says what a sync would do.
  if (a === 'would-copy') return 'copied';
  if (a === 'would-prune') return 'pruned';
  return a;
}

export function summarize(report: SyncReport, dryRun: boolean): SyncVerdict {
  const tags: TagStatus[] = [];
  const repoErrors: string[] = [];
  for (const item of report.items) {
    if (!TAG_PATTERN.test(item.tag)) {
      // '*' marks a failure of the whole repository (listing tags), not of one tag.
      if (item.error) repoErrors.push(item.error);
      continue;
    }
    tags.push({
      tag: item.tag,
      action: action(item.action),
      ...(item.digest ? { digest: item.digest } : {}),
      ...(item.error ? { error: item.error.slice(0, 4096) } : {}),
    });
  }
  tags.sort((a, b) => a.tag.localeCompare(b.tag));
  const count = (a: TagAction) => tags.filter((t) => t.action === a).length;
  const failedTags = tags.filter((t) => t.action === 'failed');
  const counts = {
    selected: tags.filter((t) => t.action !== 'pruned').length,
    copied: count('copied'),
    skipped: count('skipped'),
    failed: failedTags.length,
    pruned: count('pruned'),
  };
  const what = dryRun ? 'dry run: would copy' : 'copied';
  const summary = `${counts.selected} tags selected: ${counts.copied} ${what}, ${counts.skipped} up to date, ${counts.pruned} ${dryRun ? 'would be ' : ''}pruned`;
  if (repoErrors.length > 0) {
    return { ready: false, reason: 'SyncFailed', message: `sync failed: ${repoErrors.join('; ')}`, tags, counts };
  }
  if (failedTags.length > 0 && counts.copied + counts.skipped === 0 && counts.selected === failedTags.length) {
    return { ready: false, reason: 'SyncFailed', message: `every tag failed: ${failedTags.map((t) => `${t.tag}: ${t.error}`).join('; ')}`.slice(0, 32768), tags, counts };
  }
  if (failedTags.length > 0) {
    const list = failedTags.map((t) => `${t.tag}: ${t.error ?? 'failed'}`).join('; ');
    return { ready: false, reason: 'PartialFailure', message: `${failedTags.length} of ${tags.length} tags failed (${failedTags.map((t) => t.tag).join(', ')}): ${list}`.slice(0, 32768), tags, counts };
  }
  return { ready: true, reason: 'Succeeded', message: summary, tags, counts };
}
