/**
 * The nodes a ContainerRun can go to: node agents' heartbeat Leases in the controller's namespace.
 * A Lease is live while renewTime + leaseDurationSeconds is in the future; its labels carry the
 * node's labels, which a run's nodeSelector must all match.
 */
import { AGENT_LABEL, AGENT_NODE_LABEL, AGENT_TAINTED_LABEL } from '../k8s/api/containerrun.js';
import type { KubeClient } from '../k8s/runtime/client.js';

export interface AgentLease {
  metadata: { name: string; labels?: Record<string, string> };
  spec: { holderIdentity?: string; leaseDurationSeconds?: number; renewTime?: string };
}

export interface AgentNode {
  node: string;
  labels: Record<string, string>;
  live: boolean;
}

export function leaseIsLive(lease: AgentLease, now = Date.now()): boolean {
  const renew = lease.spec.renewTime ? Date.parse(lease.spec.renewTime) : NaN;
  if (Number.isNaN(renew)) return false;
  return renew + (lease.spec.leaseDurationSeconds ?? 40) * 1000 > now;
}

export function matchesSelector(labels: Record<string, string>, selector: Record<string, string> | undefined): boolean {
  return Object.entries(selector ?? {}).every(([k, v]) => labels[k] === v);
}

function toNode(lease: AgentLease, now: number): AgentNode | undefined {
  const node = lease.metadata.labels?.[AGENT_NODE_LABEL] ?? lease.spec.holderIdentity;
  return node ? { node, labels: lease.metadata.labels ?? {}, live: leaseIsLive(lease, now) } : undefined;
}

export class AgentDirectory {
  readonly #client: KubeClient;
  readonly #namespace: string;

  constructor(client: KubeClient, namespace: string) {
    this.#client = client;
    this.#namespace = namespace;
  }

  get namespace(): string {
    return this.#namespace;
  }

  #path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.#namespace)}/leases`;
  }

  /** Every agent that ever announced itself, live or not. */
  async list(): Promise<AgentNode[]> {
    const res = await this.#client.get<{ items: AgentLease[] }>(`${this.#path()}?labelSelector=${encodeURIComponent(`${AGENT_LABEL}=true`)}`);
    const now = Date.now();
    return res.items.map((l) => toNode(l, now)).filter((n): n is AgentNode => n !== undefined);
  }

  /** One node's agent; undefined when it never announced itself. */
  async get(node: string): Promise<AgentNode | undefined> {
    const all = await this.list();
    return all.find((n) => n.node === node);
  }
}

/**
 * Picks the live node with the fewest active runs among those matching the selector. A tainted
 * node (its agent says so on its Lease) is never picked: reaching one is a privilege, taken only by
 * pinning a run there with spec.nodeName in a privileged namespace.
 */
export function pickNode(nodes: readonly AgentNode[], selector: Record<string, string> | undefined, load: ReadonlyMap<string, number>): AgentNode | undefined {
  const fit = nodes.filter((n) => n.live && n.labels[AGENT_TAINTED_LABEL] !== 'true' && matchesSelector(n.labels, selector));
  fit.sort((a, b) => (load.get(a.node) ?? 0) - (load.get(b.node) ?? 0) || a.node.localeCompare(b.node));
  return fit[0];
}
