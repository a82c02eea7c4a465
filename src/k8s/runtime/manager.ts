/**
 * The process around controllers: the health and metrics server, optional leader election, and
 * shutdown. Controllers (informers and workers) run only while this instance leads.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { KubeClient } from './client.js';
import { startHealthServer, type HealthServer } from './health.js';
import { LeaderElector, type LeaderElectionOptions } from './leader.js';
import { ControllerMetrics } from './metrics.js';
import { MetricsAuthorizer } from './metrics-auth.js';

export interface Runnable {
  run(signal: AbortSignal): Promise<void>;
  readonly hasSynced: boolean;
}

export interface ManagerOptions {
  /** `[host]:port` for /metrics, /healthz, /readyz; omit to serve none. */
  metricsAddr?: string;
  /**
   * Serve /metrics only to callers whose bearer token the API server authenticates (TokenReview)
   * and allows `get` on /metrics (SubjectAccessReview). Default false (tests, loopback addresses);
   * `stevedore controller` turns it on unless --metrics-auth=false.
   */
  metricsAuth?: boolean;
  /** Elect a leader on this Lease before running controllers. */
  leaderElection?: Omit<LeaderElectionOptions, 'log' | 'identity'> & { identity?: string };
  metrics?: ControllerMetrics;
  log: Logger;
}

export function defaultIdentity(): string {
  return `${hostname()}_${randomBytes(4).toString('hex')}`;
}

export class Manager {
  readonly metrics: ControllerMetrics;
  readonly #client: KubeClient;
  readonly #o: ManagerOptions;
  readonly #runnables: Runnable[] = [];
  readonly identity: string;
  #elector?: LeaderElector;
  #health?: HealthServer;
  #leading = false;

  constructor(client: KubeClient, o: ManagerOptions) {
    this.#client = client;
    this.#o = o;
    this.metrics = o.metrics ?? new ControllerMetrics({ processMetrics: true });
    this.identity = o.leaderElection?.identity ?? defaultIdentity();
  }

  add(r: Runnable): void {
    this.#runnables.push(r);
  }

  get isLeader(): boolean {
    return this.#leading;
  }

  /** Bound address of the health server, once started. */
  get healthAddress(): string | undefined {
    return this.#health?.address;
  }

  /** Ready when every controller's cache has synced, or while standing by for leadership. */
  ready(): boolean {
    return !this.#leading || this.#runnables.every((r) => r.hasSynced);
  }

  /** Starts the health server; resolves once it listens (so tests can read healthAddress). */
  async start(): Promise<void> {
    if (this.#o.metricsAddr !== undefined && !this.#health) {
      const auth = this.#o.metricsAuth ? new MetricsAuthorizer(this.#client) : undefined;
      this.#health = await startHealthServer(this.#o.metricsAddr, this.metrics.registry, {
        ready: () => this.ready(),
        ...(auth ? { authorizeMetrics: (h: string | undefined) => auth.check(h) } : {}),
      });
      this.#o.log.info({ addr: this.#health.address, metricsAuth: !!auth }, 'serving /metrics, /healthz and /readyz');
    }
  }

  /** Runs until the signal aborts (or, with leader election, leadership is lost). */
  async run(signal: AbortSignal): Promise<void> {
    await this.start();
    const lead = async (leading: AbortSignal) => {
      this.#leading = true;
      this.metrics.leader.set({ name: this.#o.leaderElection?.name ?? 'none' }, 1);
      try {
        await Promise.all(this.#runnables.map((r) => r.run(leading)));
      } finally {
        this.#leading = false;
        this.metrics.leader.set({ name: this.#o.leaderElection?.name ?? 'none' }, 0);
      }
    };
    try {
      const le = this.#o.leaderElection;
      if (le) {
        this.#elector = new LeaderElector(this.#client, { ...le, identity: this.identity, log: this.#o.log });
        await this.#elector.run(signal, lead);
      } else {
        await lead(signal);
      }
    } finally {
      await this.#health?.close();
      this.#health = undefined;
    }
  }
}
