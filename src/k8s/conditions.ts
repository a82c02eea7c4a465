/**
 * kstatus condition helpers: `Ready` is always present; `Reconciling` and `Stalled` are present
 * only while true. lastTransitionTime changes only when a condition's status changes.
 */
import { rfc3339Seconds } from '../util/time.js';
import type { Condition, ConditionType } from './api/common.js';

export type ConditionStatus = Condition['status'];

export interface ConditionInput {
  type: ConditionType;
  status: ConditionStatus;
  reason: string;
  message: string;
  observedGeneration?: number;
}

const now = () => rfc3339Seconds();

export function getCondition(conds: readonly Condition[] | undefined, type: ConditionType): Condition | undefined {
  return conds?.find((c) => c.type === type);
}

export function isTrue(conds: readonly Condition[] | undefined, type: ConditionType): boolean {
  return getCondition(conds, type)?.status === 'True';
}

/** Returns a new list with the condition set (transition time kept when the status is unchanged). */
export function setCondition(conds: readonly Condition[] | undefined, c: ConditionInput, at = now()): Condition[] {
  const list = [...(conds ?? [])];
  const i = list.findIndex((x) => x.type === c.type);
  const prev = i >= 0 ? list[i] : undefined;
  const next: Condition = {
    type: c.type,
    status: c.status,
    reason: c.reason,
    message: c.message.slice(0, 32768),
    lastTransitionTime: prev && prev.status === c.status && prev.lastTransitionTime ? prev.lastTransitionTime : at,
    ...(c.observedGeneration === undefined ? {} : { observedGeneration: c.observedGeneration }),
  };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

export function removeCondition(conds: readonly Condition[] | undefined, type: ConditionType): Condition[] {
  return (conds ?? []).filter((c) => c.type !== type);
}

/** Work is under way: Reconciling=True, Ready=Unknown, no Stalled. */
export function markReconciling(conds: readonly Condition[] | undefined, generation: number, reason: string, message: string): Condition[] {
  let out = removeCondition(conds, 'Stalled');
  out = setCondition(out, { type: 'Reconciling', status: 'True', reason, message, observedGeneration: generation });
  return setCondition(out, { type: 'Ready', status: 'Unknown', reason, message, observedGeneration: generation });
}

/** Done (either way) and not stuck: Ready=True/False, no Reconciling, no Stalled. */
export function markReady(conds: readonly Condition[] | undefined, generation: number, ready: boolean, reason: string, message: string): Condition[] {
  const out = removeCondition(removeCondition(conds, 'Reconciling'), 'Stalled');
  return setCondition(out, { type: 'Ready', status: ready ? 'True' : 'False', reason, message, observedGeneration: generation });
}

/** Terminal until the spec changes: Stalled=True, Ready=False, no Reconciling. */
export function markStalled(conds: readonly Condition[] | undefined, generation: number, reason: string, message: string): Condition[] {
  let out = removeCondition(conds, 'Reconciling');
  out = setCondition(out, { type: 'Stalled', status: 'True', reason, message, observedGeneration: generation });
  return setCondition(out, { type: 'Ready', status: 'False', reason, message, observedGeneration: generation });
}
