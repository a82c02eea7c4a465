// The one mapping from a reconcile's error to conditions (k8s/runtime/reconcile-errors.ts): pure logic.
import { describe, expect, it } from 'vitest';
import { ReconcileError, StallingError, WaitingError } from '../../src/k8s/runtime/errors.js';
import { judgeReconcileError } from '../../src/k8s/runtime/reconcile-errors.js';
import { ApiError } from '../../src/k8s/runtime/client.js';
import { RegistryError } from '../../src/registry/errors.js';
import { InvalidInputError, StevedoreError } from '../../src/util/errors.js';

describe('judgeReconcileError', () => {
  it('stalls on a StallingError with its reason', () => {
    expect(judgeReconcileError(new StallingError('InvalidSpec', 'bad'))).toMatchObject({ kind: 'stalled', reason: 'InvalidSpec', message: 'bad' });
  });

  it('stalls on a non-retryable engine error, itself or wrapped in a ReconcileError, with its code', () => {
    const v = judgeReconcileError(new InvalidInputError('spec.tags.semver: nope'));
    expect(v).toMatchObject({ kind: 'stalled', reason: 'INVALID_INPUT', message: 'spec.tags.semver: nope' });
    expect(v.kind === 'stalled' && v.error).toBeInstanceOf(StallingError);
    const wrapped = new ReconcileError('SyncFailed', 'sync failed: x', { cause: new InvalidInputError('x') });
    expect(judgeReconcileError(wrapped)).toMatchObject({ kind: 'stalled', reason: 'INVALID_INPUT', message: 'sync failed: x' });
  });

  it('keeps retrying a retryable engine error, and a non-retryable wrapper around one', () => {
    const flaky = new RegistryError('503', { status: 503, url: 'http://r/v2/' });
    expect(flaky.retryable).toBe(true);
    expect(judgeReconcileError(new ReconcileError('SyncFailed', 'sync failed', { cause: flaky }))).toMatchObject({ kind: 'not-ready', reason: 'SyncFailed' });
    const wrapper = new StevedoreError('SYNC_FAILED', 'sync failed', { cause: flaky });
    expect(judgeReconcileError(wrapper)).toMatchObject({ kind: 'unknown' });
  });

  it('keeps a ReconcileError or WaitingError without an engine cause as the object’s state (retried)', () => {
    expect(judgeReconcileError(new ReconcileError('CredentialsNotFound', 'Secret a/b not found'))).toMatchObject({
      kind: 'not-ready',
      reason: 'CredentialsNotFound',
    });
    expect(judgeReconcileError(new WaitingError('Waiting', 'later', 1000))).toMatchObject({ kind: 'not-ready', reason: 'Waiting' });
  });

  it('treats anything else (an API hiccup) as unknown: retried, status untouched by the mapping', () => {
    expect(judgeReconcileError(new ApiError(500, 'InternalError', 'etcd timeout'))).toMatchObject({ kind: 'unknown' });
    expect(judgeReconcileError(new Error('ECONNRESET'))).toMatchObject({ kind: 'unknown' });
  });
});
