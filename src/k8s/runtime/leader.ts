/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection: acquire when
 * the lease is free or its holder has not renewed for leaseDuration (measured on our own clock,
 * from when we last saw the record change), renew every retryPeriod, and give up leadership when
 * renewals fail for renewDeadline. Releasing on shutdown lets a standby take over at once.
 */
import type { Logger } from 'pino';
import { sleep } from '../../util/sleep.js';
import { rfc3339Micro } from '../../util/time.js';
import { isConflict, isNotFound, type KubeClient } from './client.js';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  log: Logger;
}

interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

const microTime = rfc3339Micro;

export class LeaderElector {
  readonly #client: KubeClient;
  readonly #o: Required<LeaderElectionOptions>;
  #observed?: { holder: string; renewTime: string; at: number };
  #leading = false;

  constructor(client: KubeClient, o: LeaderElectionOptions) {
    this.#client = client;
    this.#o = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...o };
  }

  get isLeader(): boolean {
    return this.#leading;
  }

  get #path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.#o.namespace}/leases`;
  }

  /**
   * Campaigns until leading, calls `lead` with a signal that aborts when leadership is lost or
   * `signal` aborts, renews meanwhile, and releases the lease on the way out.
   */
  async run(signal: AbortSignal, lead: (leading: AbortSignal) => Promise<void>): Promise<void> {
    const log = this.#o.log.child({ lease: `${this.#o.namespace}/${this.#o.name}`, identity: this.#o.identity });
    while (!signal.aborted && !(await this.#tryAcquireOrRenew(log))) await sleep(this.#o.retryPeriodMs, signal);
    if (signal.aborted) return;
    this.#leading = true;
    log.info('became leader');
    const lost = new AbortController();
    const stop = () => lost.abort();
    signal.addEventListener('abort', stop, { once: true });
    const renewing = (async () => {
      let lastRenew = Date.now();
      while (!lost.signal.aborted) {
        await sleep(Math.min(this.#o.retryPeriodMs, 5_000), lost.signal);
        if (lost.signal.aborted) break;
        if (await this.#tryAcquireOrRenew(log)) lastRenew = Date.now();
        else if (Date.now() - lastRenew > this.#o.renewDeadlineMs) {
          log.warn('lost leadership: renewals failed past the renew deadline');
          lost.abort();
        }
      }
    })();
    try {
      await lead(lost.signal);
    } finally {
      lost.abort();
      signal.removeEventListener('abort', stop);
      await renewing;
      this.#leading = false;
      await this.#release(log);
    }
  }

  async #tryAcquireOrRenew(log: Logger): Promise<boolean> {
    const now = new Date();
    const me = this.#o.identity;
    const durationSeconds = Math.ceil(this.#o.leaseDurationMs / 1000);
    let lease: Lease;
    try {
      lease = await this.#client.get<Lease>(`${this.#path}/${this.#o.name}`);
    } catch (err) {
      if (!isNotFound(err)) {
        log.debug({ err: (err as Error).message }, 'reading lease failed');
        return false;
      }
      try {
        await this.#client.create(this.#path, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.#o.name, namespace: this.#o.namespace },
          spec: { holderIdentity: me, leaseDurationSeconds: durationSeconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 },
        });
        return true;
      } catch (e) {
        log.debug({ err: (e as Error).message }, 'creating lease failed');
        return false;
      }
    }
    const holder = lease.spec.holderIdentity ?? '';
    const renewTime = lease.spec.renewTime ?? '';
    if (!this.#observed || this.#observed.holder !== holder || this.#observed.renewTime !== renewTime) {
      this.#observed = { holder, renewTime, at: Date.now() };
    }
    const heldByOther = holder !== '' && holder !== me;
    const expired = Date.now() - this.#observed.at > (lease.spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (heldByOther && !expired) return false;
    const spec: Lease['spec'] = {
      ...lease.spec,
      holderIdentity: me,
      leaseDurationSeconds: durationSeconds,
      renewTime: microTime(now),
    };
    if (holder !== me) {
      spec.acquireTime = microTime(now);
      spec.leaseTransitions = (lease.spec.leaseTransitions ?? 0) + 1;
    }
    try {
      const updated = await this.#client.replace<Lease>(`${this.#path}/${this.#o.name}`, { ...lease, spec });
      this.#observed = { holder: me, renewTime: updated.spec.renewTime ?? '', at: Date.now() };
      return true;
    } catch (err) {
      if (!isConflict(err)) log.debug({ err: (err as Error).message }, 'updating lease failed');
      return false;
    }
  }

  /** Hands the lease back (empty holder, 1 s duration) if we still hold it. */
  async #release(log: Logger): Promise<void> {
    try {
      const lease = await this.#client.get<Lease>(`${this.#path}/${this.#o.name}`);
      if (lease.spec.holderIdentity !== this.#o.identity) return;
      await this.#client.replace(`${this.#path}/${this.#o.name}`, {
        ...lease,
        spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime() },
      });
      log.info('released leadership');
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'releasing lease failed');
    }
  }
}
