/**
 * Records events.k8s.io/v1 Events about objects (what `kubectl describe` and `kubectl events`
 * show), bounded per object as client-go's recorder bounds them:
 * - a token bucket per object (burst 25, one more every 5 minutes): an object that keeps failing
 *   cannot flood etcd with Events (client-go's EventSourceObjectSpamFilter);
 * - the same event again (same object, type, reason, action and note, within 10 minutes) is not a
 *   new Event: the first one's `series` is patched (count, lastObservedTime), as client-go's
 *   EventLogger does with `count`.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { rfc3339Micro } from '../../util/time.js';
import { isNotFound, type KubeClient } from './client.js';

export interface EventTarget {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
}

export interface EventRecorderOptions {
  controller: string;
  instance: string;
  log: Logger;
  /** Events per object at once (default 25, client-go's). */
  burst?: number;
  /** One more event per object every this long (default 5 min, client-go's). */
  refillMs?: number;
  /** How long a repeat counts as the same event (default 10 min). */
  seriesWindowMs?: number;
}

interface Seen {
  name: string;
  namespace: string;
  count: number;
  lastMs: number;
}

/** Objects and event keys remembered (least recently used dropped first). */
const MAX_TRACKED = 4096;

export class EventRecorder {
  readonly #client: KubeClient;
  readonly #o: Required<Omit<EventRecorderOptions, 'log'>> & { log: Logger };
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #seen = new Map<string, Seen>();

  constructor(client: KubeClient, o: EventRecorderOptions) {
    this.#client = client;
    this.#o = { burst: 25, refillMs: 5 * 60_000, seriesWindowMs: 10 * 60_000, ...o };
  }

  /** Best effort: a failed or rate-limited event is logged, never fails the reconcile. */
  async record(obj: EventTarget, type: 'Normal' | 'Warning', reason: string, note: string, action = 'Reconcile'): Promise<void> {
    const ns = obj.metadata.namespace ?? 'default';
    const objectKey = obj.metadata.uid ?? `${obj.kind}/${ns}/${obj.metadata.name}`;
    if (!this.#take(objectKey)) {
      this.#o.log.debug({ object: `${ns}/${obj.metadata.name}`, reason }, 'event dropped: rate limit for this object');
      return;
    }
    const text = note.slice(0, 1024);
    const key = [objectKey, type, reason, action, text].join('\0');
    const now = Date.now();
    const seen = this.#seen.get(key);
    try {
      if (seen && now - seen.lastMs < this.#o.seriesWindowMs) {
        seen.count++;
        seen.lastMs = now;
        remember(this.#seen, key, seen);
        try {
          await this.#client.patch(`/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(seen.namespace)}/events/${encodeURIComponent(seen.name)}`, {
            series: { count: seen.count, lastObservedTime: rfc3339Micro() },
          });
          return;
        } catch (err) {
          if (!isNotFound(err)) throw err;
          // Expired or deleted: start a new Event.
        }
      }
      const name = `${obj.metadata.name}.${now.toString(16)}${randomBytes(3).toString('hex')}`;
      await this.#client.create(`/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(ns)}/events`, {
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        metadata: { name, namespace: ns },
        eventTime: rfc3339Micro(),
        reportingController: this.#o.controller,
        reportingInstance: this.#o.instance,
        action,
        reason,
        note: text,
        type,
        regarding: {
          apiVersion: obj.apiVersion,
          kind: obj.kind,
          name: obj.metadata.name,
          namespace: ns,
          uid: obj.metadata.uid,
          resourceVersion: obj.metadata.resourceVersion,
        },
      });
      remember(this.#seen, key, { name, namespace: ns, count: 1, lastMs: now });
    } catch (err) {
      this.#o.log.warn({ err: (err as Error).message, reason }, 'recording event failed');
    }
  }

  /** Takes a token from the object's bucket; false when it is empty. */
  #take(objectKey: string): boolean {
    const now = Date.now();
    const b = this.#buckets.get(objectKey) ?? { tokens: this.#o.burst, at: now };
    b.tokens = Math.min(this.#o.burst, b.tokens + (now - b.at) / this.#o.refillMs);
    b.at = now;
    if (b.tokens < 1) {
      remember(this.#buckets, objectKey, b);
      return false;
    }
    b.tokens -= 1;
    remember(this.#buckets, objectKey, b);
    return true;
  }
}

function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > MAX_TRACKED) map.delete(map.keys().next().value!);
}
