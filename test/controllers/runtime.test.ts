import { describe, expect, it } from 'vitest';
import { nextCron } from '../../src/controllers/schedule.js';
import { parseDuration } from '../../src/util/duration.js';
import { summarize } from '../../src/controllers/imagemirror-status.js';
import { planMirror, syncSpec, syncTarget, type RegistrySide } from '../../src/controllers/imagemirror-plan.js';
import { selectTags } from '../../src/copy/sync.js';
import { buildProgram } from '../../src/cli/main.js';
import { markReady, markReconciling, markStalled, setCondition } from '../../src/k8s/conditions.js';
import { WorkQueue } from '../../src/k8s/runtime/queue.js';
import { StallingError } from '../../src/k8s/runtime/errors.js';

describe('work queue', () => {
  it('dedupes keys, never hands one key to two workers, and requeues a key added while in flight', async () => {
    const q = new WorkQueue();
    q.add('ns/a');
    q.add('ns/a');
    q.add('ns/b');
    expect(q.depth).toBe(2);
    const k = await q.get();
    expect(k).toBe('ns/a');
    q.add('ns/a');
    expect(q.depth).toBe(1);
    q.done('ns/a');
    expect(q.depth).toBe(2);
    q.shutDown();
  });

  it('backs off per key exponentially and forget() resets it', () => {
    const q = new WorkQueue({ backoff: { baseMs: 100, maxMs: 1000 }, requeueJitter: 0 });
    expect([q.addRateLimited('k'), q.addRateLimited('k'), q.addRateLimited('k'), q.addRateLimited('k'), q.addRateLimited('k')]).toEqual([
      100, 200, 400, 800, 1000,
    ]);
    q.forget('k');
    expect(q.addRateLimited('k')).toBe(100);
    q.shutDown();
  });
});

describe('schedule', () => {
  it('parses Go durations', () => {
    expect(parseDuration('30m')).toBe(1_800_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(() => parseDuration('5 minutes')).toThrow();
  });

  it('finds the next cron time, in UTC and in a time zone', () => {
    expect(nextCron('0 */6 * * *', new Date('2025-03-01T07:10:00Z')).toISOString()).toBe('2025-03-01T12:00:00.000Z');
    expect(nextCron('30 2 * * mon', new Date('2025-03-01T00:00:00Z')).toISOString()).toBe('2025-03-03T02:30:00.000Z');
    expect(nextCron('0 9 * * *', new Date('2025-07-01T00:00:00Z'), 'Europe/Berlin').toISOString()).toBe('2025-07-01T07:00:00.000Z');
    expect(() => nextCron('61 * * * *', new Date())).toThrow();
  });
});

describe('kstatus conditions', () => {
  it('keeps Ready always, Reconciling and Stalled only while true, and transition times only on status change', () => {
    let c = markReconciling(undefined, 1, 'Progressing', 'go');
    expect(c.map((x) => x.type).sort()).toEqual(['Ready', 'Reconciling']);
    c = markReady(c, 1, true, 'Succeeded', 'done');
    expect(c.map((x) => x.type)).toEqual(['Ready']);
    c = markStalled(c, 2, 'InvalidSpec', 'bad');
    expect(c.map((x) => x.type).sort()).toEqual(['Ready', 'Stalled']);
    const t = setCondition(c, { type: 'Ready', status: 'False', reason: 'X', message: 'y' }, '2000-01-01T00:00:00Z');
    expect(t.find((x) => x.type === 'Ready')!.lastTransitionTime).toBe(c.find((x) => x.type === 'Ready')!.lastTransitionTime);
  });
});

describe('ImageMirror plan and status', () => {
  const loc = (repository: string) => ({ registry: { repository } });
  it('maps allow/deny to full-match filters and the destination to an exact repository', () => {
    const p = planMirror({ source: loc('r.example/team/app'), destination: loc('m.example/elsewhere'), tags: { allow: 'v1\\..*', deny: 'v1\\.0' } });
    expect(p.destination.kind).toBe('registry');
    expect(syncTarget(p.destination as RegistrySide, undefined)).toMatchObject({ kind: 'registry', registry: 'm.example', repository: 'elsewhere' });
    expect(selectTags(syncSpec(p.source as RegistrySide, p.selection, undefined), ['v1.0', 'v1.1', 'xv1.2'])).toEqual(['v1.1']);
  });

  it('stalls on specs it cannot carry out', () => {
    expect(() => planMirror({ source: loc('r.example/a'), destination: loc('r.example/a') })).toThrow(StallingError);
    expect(() => planMirror({ source: { layout: { claimName: 'x' } }, destination: { layout: { claimName: 'y' } } })).toThrow(StallingError);
  });

  it('combines semver with allow/deny and keeps the newest N versions', () => {
    const p = planMirror({ source: loc('r.example/a'), destination: loc('m.example/b'), tags: { semver: '>=1.0.0', deny: '.*-rc', newest: 2 } });
    expect(selectTags(syncSpec(p.source as RegistrySide, p.selection, undefined), ['0.9.0', '1.0.0', '1.2.0', '2.0.0-rc', '1.10.0', 'latest', 'v1.5'])).toEqual(
      ['1.10.0', 'v1.5'],
    );
  });

  it('reports a dry run as what it would do', () => {
    const v = summarize(
      { items: [{ source: 's', destination: 'd', tag: 'a', action: 'would-copy' }], copied: 0, skipped: 0, failed: 0, pruned: 0, wouldCopy: 1, wouldPrune: 0 },
      true,
    );
    expect(v.tags).toEqual([{ tag: 'a', action: 'copied' }]);
    expect(v.ready).toBe(true);
  });
});

describe('stevedore controller command', () => {
  it('is registered with its flags', async () => {
    const cmd = (await buildProgram()).commands.find((c) => c.name() === 'controller')!;
    expect(cmd.options.map((o) => o.long)).toEqual(expect.arrayContaining(['--kubeconfig', '--metrics-addr', '--leader-elect', '--namespace']));
  });
});
