/** Records events.k8s.io/v1 Events about objects (what `kubectl describe` and `kubectl events` show). */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { rfc3339Micro } from '../../util/time.js';
import type { KubeClient } from './client.js';

export interface EventTarget {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
}

export class EventRecorder {
  readonly #client: KubeClient;
  readonly #controller: string;
  readonly #instance: string;
  readonly #log: Logger;

  constructor(client: KubeClient, o: { controller: string; instance: string; log: Logger }) {
    this.#client = client;
    this.#controller = o.controller;
    this.#instance = o.instance;
    this.#log = o.log;
  }

  /** Best effort: a failed event is logged, never fails the reconcile. */
  async record(obj: EventTarget, type: 'Normal' | 'Warning', reason: string, note: string, action = 'Reconcile'): Promise<void> {
    const ns = obj.metadata.namespace ?? 'default';
    const body = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name: `${obj.metadata.name}.${Date.now().toString(16)}${randomBytes(3).toString('hex')}`, namespace: ns },
      eventTime: rfc3339Micro(),
      reportingController: this.#controller,
      reportingInstance: this.#instance,
      action,
      reason,
      note: note.slice(0, 1024),
      type,
      regarding: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: obj.metadata.name,
        namespace: ns,
        uid: obj.metadata.uid,
        resourceVersion: obj.metadata.resourceVersion,
      },
    };
    try {
      await this.#client.create(`/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(ns)}/events`, body);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message, reason }, 'recording event failed');
    }
  }
}
