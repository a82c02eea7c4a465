/**
 * The agent's own check of a run's privileges (defence in depth behind the chart's
 * ValidatingAdmissionPolicy, which may not be installed, and which cannot see node taints).
 *
 * Levels, as Pod Security Admission's, granted per namespace by an administrator with the Namespace
 * label `stevedore.dev/containerrun-privileges`:
 * - `restricted` (default, also when the label is absent or has another value): the run gets a
 *   user namespace of its own (`hostUsers` must not be true; uid 0 inside it is allowed), no host
 *   network, and `spec.nodeName` may not name a node tainted NoSchedule or NoExecute.
 * - `privileged`: all of those are allowed.
 */
import { PRIVILEGE_LABEL, type ContainerRunSpec, type PrivilegeLevel } from '../k8s/api/containerrun.js';

export interface NodeTaint {
  key: string;
  value?: string;
  effect: string;
}

/** Taints that keep ordinary workloads off a node: NoSchedule/NoExecute, condition taints aside. */
export function reservingTaints(taints: readonly NodeTaint[] | undefined): NodeTaint[] {
  // Condition taints (node.kubernetes.io/not-ready, unreachable, disk-pressure, ...) say how the
  // node is, not who may use it: they come and go with the node's state and are no privilege.
  return (taints ?? []).filter((t) => (t.effect === 'NoSchedule' || t.effect === 'NoExecute') && !t.key.startsWith('node.kubernetes.io/'));
}

/** The level a Namespace's labels grant. */
export function privilegeLevel(labels: Record<string, string> | undefined): PrivilegeLevel {
  return labels?.[PRIVILEGE_LABEL] === 'privileged' ? 'privileged' : 'restricted';
}

/**
 * What the spec asks for beyond the level, one sentence per rule (naming the rule and the label
 * that grants it); empty when the run may go ahead. `pinnedNodeTaints`: the taints of the node
 * `spec.nodeName` names (undefined when the spec names none).
 */
export function privilegeViolations(spec: ContainerRunSpec, level: PrivilegeLevel, pinnedNodeTaints?: readonly NodeTaint[]): string[] {
  if (level === 'privileged') return [];
  const grant = `granted by the Namespace label ${PRIVILEGE_LABEL}=privileged`;
  const out: string[] = [];
  if (spec.hostUsers === true) out.push(`spec.hostUsers: true (no user namespace of its own) is ${grant}`);
  if (spec.network === 'host') out.push(`spec.network: host is ${grant}`);
  if (spec.network === 'private') out.push(`spec.network: private (a route to the node's loopback services) is ${grant}`);
  if ((spec.ports ?? []).length > 0) out.push(`spec.ports (a listener on the node) is ${grant}`);
  const tainted = reservingTaints(pinnedNodeTaints);
  if (spec.nodeName && tainted.length > 0) {
    out.push(
      `spec.nodeName: node ${spec.nodeName} is tainted (${tainted.map((t) => `${t.key}${t.value ? `=${t.value}` : ''}:${t.effect}`).join(', ')}); pinning a run to a tainted node is ${grant}`,
    );
  }
  return out;
}
