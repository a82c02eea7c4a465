// What a judged error writes into status (k8s/runtime/reconcile-errors.ts applyVerdict): pure logic.
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/k8s/runtime/client.js';
import { ReconcileError } from '../../src/k8s/runtime/errors.js';
import { applyVerdict, judgeReconcileError, type VerdictStatus } from '../../src/k8s/runtime/reconcile-errors.js';
import { markReconciling } from '../../src/k8s/conditions.js';
import { InvalidInputError } from '../../src/util/errors.js';

const working = (): VerdictStatus => ({ observedGeneration: 1, conditions: markReconciling(undefined, 1, 'Progressing', 'syncing') });
const cond = (s: VerdictStatus, type: string) => s.conditions?.find((c) => c.type === type);

describe('applyVerdict', () => {
  it('stalls a non-retryable engine error with its code, drops Reconciling, and counts the reconcile request as handled', () => {
    const s = working();
    applyVerdict(s, judgeReconcileError(new InvalidInputError('spec.x: bad')), { generation: 2, requested: 'r1' });
    expect(cond(s, 'Stalled')).toMatchObject({ status: 'True', reason: 'INVALID_INPUT', observedGeneration: 2 });
    expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason: 'INVALID_INPUT' });
    expect(cond(s, 'Reconciling')).toBeUndefined();
    expect(s).toMatchObject({ observedGeneration: 2, lastHandledReconcileAt: 'r1' });
  });

  it('a ReconcileError is Ready=False with its reason, not Stalled, and leaves the request unhandled', () => {
    const s = working();
    applyVerdict(s, judgeReconcileError(new ReconcileError('CredentialsNotFound', 'Secret a/b not found')), { generation: 2, requested: 'r1' });
    expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason: 'CredentialsNotFound', message: 'Secret a/b not found' });
    expect(cond(s, 'Stalled')).toBeUndefined();
    expect(s.lastHandledReconcileAt).toBeUndefined();
    expect(s.observedGeneration).toBe(2);
  });

  it('an error that is not the object’s leaves status alone, unless the kind names a reason for it', () => {
    const hiccup = judgeReconcileError(new ApiError(500, 'InternalError', 'etcd timeout'));
    const s = working();
    const before = structuredClone(s);
    applyVerdict(s, hiccup, { generation: 2 });
    expect(s).toEqual(before);
    applyVerdict(s, hiccup, { generation: 2, unknownReason: 'SyncFailed' });
    expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason: 'SyncFailed', message: 'etcd timeout' });
    expect(s.observedGeneration).toBe(2);
  });
});
