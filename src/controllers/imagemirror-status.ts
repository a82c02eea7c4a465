/** Turns a sync report into ImageMirror status (per-tag outcomes, counts, and the Ready verdict); its typed reconcile errors. */
import type { SyncReport } from '../copy/sync.js';
import type { ImageMirrorReason, ImageMirrorStatus, TagAction, TagStatus } from '../k8s/api/imagemirror.js';
import { errorsFor } from '../k8s/runtime/reconcile.js';

/** The reconcile errors of ImageMirror's steps and helpers, typed by its reasons (a typo does not compile). */
export const mirrorErrors = errorsFor<ImageMirrorReason>();

const TAG_PATTERN = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

export interface SyncVerdict {
  ready: boolean;
  reason: ImageMirrorReason;
  message: string;
  tags: TagStatus[];
  counts: NonNullable<ImageMirrorStatus['counts']>;
}

/** The message of the engine's PolicyDeniedError (code POLICY_DENIED), as a sync item carries it. */
const POLICY_DENIED_PREFIX = 'policy denied: ';

function action(item: SyncReport['items'][number]): TagAction {
  const a = item.action;
  if (a === 'failed' && item.error?.startsWith(POLICY_DENIED_PREFIX)) return 'denied';
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
      action: action(item),
      ...(item.digest ? { digest: item.digest } : {}),
      ...(item.error ? { error: item.error.slice(0, 4096) } : {}),
    });
  }
  tags.sort((a, b) => a.tag.localeCompare(b.tag));
  const count = (a: TagAction) => tags.filter((t) => t.action === a).length;
  const failedTags = tags.filter((t) => t.action === 'failed' || t.action === 'denied');
  const deniedTags = tags.filter((t) => t.action === 'denied');
  // Tags prune left because they share a kept tag's digest are listed, but were not selected.
  const leftByPrune = report.items.filter((i) => i.action === 'skipped' && i.note?.startsWith('not pruned')).length;
  const counts = {
    selected: tags.filter((t) => t.action !== 'pruned').length - leftByPrune,
    copied: count('copied'),
    skipped: count('skipped'),
    failed: count('failed'),
    denied: deniedTags.length,
    pruned: count('pruned'),
  };
  const what = dryRun ? 'dry run: would copy' : 'copied';
  const summary = `${counts.selected} tags selected: ${counts.copied} ${what}, ${counts.skipped} up to date, ${counts.pruned} ${dryRun ? 'would be ' : ''}pruned`;
  if (repoErrors.length > 0) {
    return { ready: false, reason: 'SyncFailed', message: `sync failed: ${repoErrors.join('; ')}`, tags, counts };
  }
  const everyTagBad = failedTags.length > 0 && counts.copied + counts.skipped === 0 && counts.selected === failedTags.length;
  if (everyTagBad && deniedTags.length === failedTags.length) {
    const list = deniedTags.map((t) => `${t.tag}: ${t.error}`).join('; ');
    return { ready: false, reason: 'PolicyDenied', message: `spec.policy refused every tag, nothing was copied: ${list}`.slice(0, 32768), tags, counts };
  }
  if (everyTagBad) {
    return {
      ready: false,
      reason: 'SyncFailed',
      message: `every tag failed: ${failedTags.map((t) => `${t.tag}: ${t.error}`).join('; ')}`.slice(0, 32768),
      tags,
      counts,
    };
  }
  if (failedTags.length > 0) {
    // Denied tags' errors start with "policy denied: ", which tells them apart in the list.
    const list = failedTags.map((t) => `${t.tag}: ${t.error ?? 'failed'}`).join('; ');
    const verb = deniedTags.length === 0 ? 'failed' : counts.failed === 0 ? 'were denied by spec.policy' : 'failed or were denied by spec.policy';
    return {
      ready: false,
      reason: 'PartialFailure',
      message: `${failedTags.length} of ${tags.length} tags ${verb} (${failedTags.map((t) => t.tag).join(', ')}): ${list}`.slice(0, 32768),
      tags,
      counts,
    };
  }
  return { ready: true, reason: 'Succeeded', message: summary, tags, counts };
}
