/**
 * The agent's heartbeat: a coordination.k8s.io Lease `stevedore-agent-<node>` in the controller's
 * namespace, renewed every renewMs. Its labels carry the node's labels (so the controller can
 * match nodeSelectors without reading Node objects) and mark it as an agent's; an expired renewTime
 * tells the controller the node is lost.
 */
import type { Logger } from 'pino';
import { AGENT_LABEL, AGENT_NODE_LABEL } from '../k8s/api/containerrun.js';
import { sleep } from '../util/sleep.js';
import { isNotFound, type KubeClient } from '../k8s/runtime/client.js';
import { errorMessage } from '../util/errors.js';
import { agentLeaseName } from './naming.js';
import { rfc3339Micro } from '../util/time.js';

export interface HeartbeatOptions {
  namespace: string;
  nodeName: string;
  /** Labels of the node (from its Node object and/or --node-labels). */
  labels: Record<string, string>;
  /** How long the Lease counts as live after a renewal (default 40 s, as a kubelet's node lease). */
  leaseDurationSeconds?: number;
  /** Renewal interval (default a quarter of the duration). */
  renewMs?: number;
  log: Logger;
}

interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; labels?: Record<string, string>; resourceVersion?: string };
  spec: { holderIdentity?: string; leaseDurationSeconds?: number; renewTime?: string; acquireTime?: string };
}

export class Heartbeat {
  readonly #client: KubeClient;
  readonly #o: HeartbeatOptions;
  #renewed = false;

  constructor(client: KubeClient, o: HeartbeatOptions) {
    this.#client = client;
    this.#o = o;
  }

  /** True once the Lease has been written at least once. */
  get hasSynced(): boolean {
    return this.#renewed;
  }

  get #duration(): number {
    return this.#o.leaseDurationSeconds ?? 40;
  }

  /** Renews until the signal aborts; failures are logged and retried at the next tick. */
  async run(signal: AbortSignal): Promise<void> {
    const every = this.#o.renewMs ?? Math.max(1000, (this.#duration * 1000) / 4);
    while (!signal.aborted) {
      try {
        await this.renew();
        this.#renewed = true;
      } catch (err) {
        this.#o.log.warn({ err: errorMessage(err), node: this.#o.nodeName }, 'renewing the agent lease failed');
      }
      await sleep(every, signal);
    }
  }

  /** Creates or renews the Lease (labels refreshed on each renewal). */
  async renew(): Promise<void> {
    const { namespace, nodeName } = this.#o;
    const name = agentLeaseName(nodeName);
    const path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
    const labels = { ...this.#o.labels, [AGENT_LABEL]: 'true', [AGENT_NODE_LABEL]: nodeName };
    const now = rfc3339Micro();
    let lease: Lease;
    try {
      lease = await this.#client.get<Lease>(`${path}/${name}`);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.#client.create(path, {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name, namespace, labels },
        spec: { holderIdentity: nodeName, leaseDurationSeconds: this.#duration, acquireTime: now, renewTime: now },
      } satisfies Lease);
      return;
    }
    await this.#client.replace(`${path}/${name}`, {
      ...lease,
      metadata: { ...lease.metadata, labels },
      spec: { ...lease.spec, holderIdentity: nodeName, leaseDurationSeconds: this.#duration, renewTime: now },
    });
  }
}
