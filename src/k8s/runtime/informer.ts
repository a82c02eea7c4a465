/**
 * An informer: list, then watch from the list's resourceVersion, keeping a cache of objects and
 * calling handlers on changes. A 410 Gone (or an expired resourceVersion) relists; any other error
 * restarts the list+watch after an exponential backoff. Bookmarks keep the resourceVersion fresh.
 */
import type { Logger } from 'pino';
import { sleep } from '../../util/sleep.js';
import { exponentialDelay } from './backoff.js';
import { ApiError, resourcePath, type KubeClient, type ResourcePath, type WatchEvent } from './client.js';

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  annotations?: Record<string, string>;
  finalizers?: string[];
  deletionTimestamp?: string | Date;
}
export interface MetaObject {
  metadata: ObjectMeta;
}

export interface InformerHandlers<T extends MetaObject> {
  onAdd?(obj: T): void;
  onUpdate?(oldObj: T, newObj: T): void;
  onDelete?(obj: T): void;
}

export interface InformerOptions {
  /** Watch one namespace; default all. */
  namespace?: string;
  /** Only objects matching this label selector (e.g. `app=x,tier in (a,b)`). */
  labelSelector?: string;
  /** Server-side watch timeout, after which the watch is reopened (default 300 s). */
  watchTimeoutSeconds?: number;
  log: Logger;
}

export function objectKey(obj: MetaObject): string {
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : (obj.metadata.name ?? '');
}

export class Informer<T extends MetaObject> {
  readonly #client: KubeClient;
  readonly #resource: ResourcePath;
  readonly #o: InformerOptions;
  readonly #handlers: InformerHandlers<T>[] = [];
  readonly #cache = new Map<string, T>();
  #synced = false;
  #syncedWaiters: (() => void)[] = [];

  constructor(client: KubeClient, resource: ResourcePath, o: InformerOptions) {
    this.#client = client;
    this.#resource = resource;
    this.#o = o;
  }

  addHandlers(h: InformerHandlers<T>): void {
    this.#handlers.push(h);
  }

  get(key: string): T | undefined {
    return this.#cache.get(key);
  }

  list(): T[] {
    return [...this.#cache.values()];
  }

  get hasSynced(): boolean {
    return this.#synced;
  }

  waitForSync(): Promise<void> {
    return this.#synced ? Promise.resolve() : new Promise((r) => this.#syncedWaiters.push(r));
  }

  /** Runs until the signal aborts. */
  async run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    const path = resourcePath(this.#resource, this.#o.namespace);
    const selector = this.#o.labelSelector ? `&labelSelector=${encodeURIComponent(this.#o.labelSelector)}` : '';
    while (!signal.aborted) {
      try {
        let rv = await this.#relist(path, selector, signal);
        failures = 0;
        // Watch from rv until Gone; each server timeout just reopens the watch.
        for (;;) {
          if (signal.aborted) return;
          const q = `?watch=1&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(rv)}&timeoutSeconds=${this.#o.watchTimeoutSeconds ?? 300}${selector}`;
          for await (const ev of this.#client.watch<T>(path + q, signal)) {
            if (ev.type === 'ERROR') {
              const status = ev.object as unknown as { code?: number; reason?: string; message?: string };
              throw new ApiError(status.code ?? 500, status.reason ?? 'Unknown', status.message ?? 'watch error');
            }
            rv = ev.object.metadata.resourceVersion ?? rv;
            if (ev.type !== 'BOOKMARK') this.#apply(ev);
          }
        }
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof ApiError && err.status === 410) {
          this.#o.log.debug({ resource: this.#resource.plural }, 'watch expired (410 Gone); relisting');
          continue;
        }
        const delay = exponentialDelay(failures++, { baseMs: 500, maxMs: 30_000, jitter: 0.2 });
        this.#o.log.warn({ resource: this.#resource.plural, err: (err as Error).message, retryInMs: delay }, 'list/watch failed');
        await sleep(delay, signal);
      }
    }
  }

  async #relist(path: string, selector: string, signal: AbortSignal): Promise<string> {
    const items: T[] = [];
    let cont = '';
    let rv = '';
    do {
      const page = await this.#client.get<{ metadata: { resourceVersion?: string; continue?: string }; items: T[] }>(
        `${path}?limit=500${selector}${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`,
        signal,
      );
      items.push(...page.items);
      rv = page.metadata.resourceVersion ?? rv;
      cont = page.metadata.continue ?? '';
    } while (cont);
    const seen = new Set<string>();
    for (const item of items) {
      const key = objectKey(item);
      seen.add(key);
      const old = this.#cache.get(key);
      this.#cache.set(key, item);
      for (const h of this.#handlers) old ? h.onUpdate?.(old, item) : h.onAdd?.(item);
    }
    for (const [key, old] of this.#cache) {
      if (seen.has(key)) continue;
      this.#cache.delete(key);
      for (const h of this.#handlers) h.onDelete?.(old);
    }
    if (!this.#synced) {
      this.#synced = true;
      for (const w of this.#syncedWaiters.splice(0)) w();
    }
    return rv;
  }

  #apply(ev: WatchEvent<T>): void {
    const key = objectKey(ev.object);
    const old = this.#cache.get(key);
    if (ev.type === 'DELETED') {
      this.#cache.delete(key);
      for (const h of this.#handlers) h.onDelete?.(ev.object);
      return;
    }
    this.#cache.set(key, ev.object);
    for (const h of this.#handlers) old ? h.onUpdate?.(old, ev.object) : h.onAdd?.(ev.object);
  }
}
