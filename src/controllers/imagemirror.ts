/**
 * The ImageMirror reconciler, in Flux's shape: get → deletion and finalizer → ordered steps
 * (suspend, plan, schedule, credentials, sync) → status is always patched on the way out.
 */
import type { Logger } from 'pino';
import { sync, type SyncReport } from '../copy/sync.js';
import { GROUP, RECONCILE_REQUESTED_AT_ANNOTATION, VERSION, API_VERSION } from '../k8s/api/common.js';
import type { ImageMirror, ImageMirrorStatus, TagStatus } from '../k8s/api/imagemirror.js';
import { getCondition, markReady, markReconciling, markStalled } from '../k8s/conditions.js';
import { isNotFound, resourcePath, type KubeClient, type ResourcePath } from '../k8s/runtime/client.js';
import type { ReconcileRequest, ReconcileResult, Reconciler } from '../k8s/runtime/controller.js';
import { ReconcileError, StallingError } from '../k8s/runtime/errors.js';
import type { EventRecorder } from '../k8s/runtime/events.js';
import { judgeReconcileError } from '../k8s/runtime/reconcile-errors.js';
import type { Credentials } from '../registry/credentials.js';
import type { TransportContext } from '../transports/types.js';
import { errorMessage } from '../util/errors.js';
import { credentialsFromSecret } from './imagemirror-credentials.js';
import { layoutDirectory, syncFromLayout } from './imagemirror-layout.js';
import { describeSide, planMirror, registryContext, syncSpec, syncTarget, type MirrorSide, type RegistrySide } from './imagemirror-plan.js';
import { policyFromSecret } from './imagemirror-policy.js';
import { summarize } from './imagemirror-status.js';
import { nextCron, parseDuration } from './schedule.js';

/**
 * Every engine call of the controller runs with this context: registry credentials come only from
 * the mirror's own Secrets, never from the controller's auth files, environment or home (a mirror
 * naming no Secret is anonymous, whatever the process serving it may log in as).
 */
const NO_AMBIENT: Pick<TransportContext, 'ambientCredentials'> = { ambientCredentials: false };

export const IMAGE_MIRROR_FINALIZER = 'stevedore.dev/imagemirror';
export const IMAGE_MIRROR_RESOURCE: ResourcePath = { group: GROUP, version: VERSION, plural: 'imagemirrors' };

export interface ImageMirrorReconcilerOptions {
  events: EventRecorder;
  log: Logger;
  /** Engine entry point (the real sync by default). */
  sync?: typeof sync;
  /** Images synced in parallel per mirror. */
  parallelImages?: number;
  /**
   * Directory under which the operator mounts volumes for OCI-layout sides (`--layout-root`):
   * spec.*.layout {claimName, path} of a mirror in namespace NS is <layoutRoot>/NS/<claimName>/<path>.
   * Without it, layout sides stall with InvalidSpec.
   */
  layoutRoot?: string;
}

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Status keys this controller owns; absent ones are sent as null so a merge patch removes them. */
const STATUS_KEYS = ['observedGeneration', 'conditions', 'lastHandledReconcileAt', 'lastSyncTime', 'nextSyncTime', 'counts', 'tags'] as const;

export class ImageMirrorReconciler implements Reconciler<ImageMirror> {
  readonly name = 'imagemirror';
  readonly resource = IMAGE_MIRROR_RESOURCE;
  readonly #client: KubeClient;
  readonly #o: ImageMirrorReconcilerOptions;

  constructor(client: KubeClient, o: ImageMirrorReconcilerOptions) {
    this.#client = client;
    this.#o = o;
  }

  /** Syncs under way, by namespace/name: deleting the mirror cancels its sync. */
  readonly #running = new Map<string, AbortController>();

  /** Status patches do not enqueue: only spec changes, reconcile requests and deletion do. */
  shouldEnqueueUpdate(a: ImageMirror, b: ImageMirror): boolean {
    if (!a.metadata.deletionTimestamp && b.metadata.deletionTimestamp) {
      this.#running.get(`${b.metadata.namespace}/${b.metadata.name}`)?.abort(new Error('the ImageMirror is being deleted'));
    }
    return (
      a.metadata.generation !== b.metadata.generation ||
      a.metadata.annotations?.[RECONCILE_REQUESTED_AT_ANNOTATION] !== b.metadata.annotations?.[RECONCILE_REQUESTED_AT_ANNOTATION] ||
      (!a.metadata.deletionTimestamp && !!b.metadata.deletionTimestamp)
    );
  }

  #path(ns: string, name: string, sub?: string): string {
    return resourcePath(IMAGE_MIRROR_RESOURCE, ns, name, sub);
  }

  async reconcile(req: ReconcileRequest, signal: AbortSignal): Promise<ReconcileResult> {
    // The informer's copy spares a GET per reconcile (a restarted controller over 1000 up-to-date
    // mirrors spent most of its 12-23 s on them); writes stay guarded by resourceVersion or merge patches.
    let obj: ImageMirror;
    if (req.cached) obj = structuredClone(req.cached as ImageMirror);
    else {
      try {
        obj = await this.#client.get<ImageMirror>(this.#path(req.namespace, req.name));
      } catch (err) {
        if (isNotFound(err)) return {};
        throw err;
      }
    }
    const finalizers = obj.metadata.finalizers ?? [];
    if (obj.metadata.deletionTimestamp) {
      // Nothing to clean up: mirrored images stay. Let the object go.
      if (finalizers.includes(IMAGE_MIRROR_FINALIZER)) await this.#setFinalizers(obj, finalizers.filter((f) => f !== IMAGE_MIRROR_FINALIZER));
      return {};
    }
    if (!finalizers.includes(IMAGE_MIRROR_FINALIZER)) obj = await this.#setFinalizers(obj, [...finalizers, IMAGE_MIRROR_FINALIZER]);

    const before = structuredClone(obj.status ?? {});
    const status: ImageMirrorStatus = structuredClone(before);
    const generation = obj.metadata.generation ?? 0;
    let result: ReconcileResult = {};
    let failure: unknown;
    try {
      result = await this.#steps(obj, status, signal);
    } catch (err) {
      const verdict = judgeReconcileError(err);
      // A stalled mirror's error goes to the queue as a StallingError: no retry until the spec changes.
      failure = verdict.kind === 'stalled' ? verdict.error : err;
      if (verdict.kind === 'stalled') {
        status.conditions = markStalled(status.conditions, generation, verdict.reason, verdict.message);
        const requested = obj.metadata.annotations?.[RECONCILE_REQUESTED_AT_ANNOTATION];
        if (requested !== undefined) status.lastHandledReconcileAt = requested;
      } else status.conditions = markReady(status.conditions, generation, false, verdict.kind === 'not-ready' ? verdict.reason : 'SyncFailed', verdict.message);
      status.observedGeneration = generation;
    } finally {
      if (!signal.aborted || failure === undefined) await this.#patchStatus(obj, status);
      await this.#eventOnTransition(obj, before, status);
    }
    if (failure !== undefined) throw failure;
    return result;
  }

  async #steps(obj: ImageMirror, status: ImageMirrorStatus, signal: AbortSignal): Promise<ReconcileResult> {
    const generation = obj.metadata.generation ?? 0;
    const spec = obj.spec;
    const ns = obj.metadata.namespace ?? 'default';

    if (spec.suspend) {
      const ready = getCondition(status.conditions, 'Ready');
      status.conditions = markReady(status.conditions, generation, ready?.status === 'True', 'Suspended', 'the mirror is suspended: no sync is scheduled');
      status.observedGeneration = generation;
      delete status.nextSyncTime;
      return {};
    }

    const now = new Date();
    const requested = obj.metadata.annotations?.[RECONCILE_REQUESTED_AT_ANNOTATION];
    // Stalled for this generation: the same spec cannot succeed, so a resync or a restarted
    // controller does not try it again; a spec change or a reconcile request does.
    const stalled = getCondition(status.conditions, 'Stalled');
    if (stalled?.status === 'True' && stalled.observedGeneration === generation && (requested === undefined || requested === status.lastHandledReconcileAt)) {
      return {};
    }
    const plan = planMirror(spec);
    const ready = getCondition(status.conditions, 'Ready');
    const upToDate =
      status.observedGeneration === generation &&
      ready?.status === 'True' &&
      ready.reason === 'Succeeded' &&
      ready.observedGeneration === generation &&
      status.lastSyncTime !== undefined &&
      (requested === undefined || requested === status.lastHandledReconcileAt);
    const next = status.nextSyncTime ? new Date(status.nextSyncTime) : undefined;
    if (upToDate && (!spec.schedule || (next && next > now))) {
      return next && spec.schedule ? { requeueAfterMs: next.getTime() - now.getTime() } : {};
    }

    // Tell the world work is under way (kstatus InProgress) before the long part.
    status.conditions = markReconciling(status.conditions, generation, 'Progressing', `syncing ${describeSide(plan.source)}`);
    await this.#patchStatus(obj, status);

    const [srcCreds, destCreds, policy, srcDir, destDir] = await Promise.all([
      this.#creds(ns, plan.source),
      this.#creds(ns, plan.destination),
      spec.policy ? policyFromSecret(this.#client, ns, spec.policy) : undefined,
      plan.source.kind === 'layout' ? layoutDirectory(this.#o.layoutRoot, ns, 'source', plan.source) : undefined,
      plan.destination.kind === 'layout' ? layoutDirectory(this.#o.layoutRoot, ns, 'destination', plan.destination) : undefined,
    ]);
    const started = new Date();
    let report: SyncReport;
    const run = this.#o.sync ?? sync;
    const parallelImages = this.#o.parallelImages ?? 4;
    const key = `${ns}/${obj.metadata.name}`;
    const deleted = new AbortController();
    this.#running.set(key, deleted);
    signal = AbortSignal.any([signal, deleted.signal]);
    try {
      if (plan.source.kind === 'layout') {
        const dest = plan.destination as RegistrySide;
        report = await syncFromLayout(
          srcDir!,
          plan.selection,
          { registry: dest.registry, repository: dest.repository, context: { ...registryContext(dest, destCreds), ...NO_AMBIENT } },
          { platforms: plan.options.platforms, dryRun: plan.options.dryRun, ...(policy ? { policy } : {}), parallelImages, signal },
        );
      } else {
        const target = plan.destination.kind === 'layout' ? syncTarget({ kind: 'layout', dir: destDir! }, undefined) : syncTarget(plan.destination, destCreds);
        if (target.kind === 'registry') target.context = { ...target.context, ...NO_AMBIENT };
        report = await run([syncSpec(plan.source, plan.selection, srcCreds)], target, {
          ...plan.options,
          sourceContext: NO_AMBIENT,
          ...(policy ? { policy } : {}),
          parallelImages,
          signal,
        });
      }
    } catch (err) {
      // Deleted while syncing: nothing to report on an object that is going away; the deletion's
      // own event brings the next reconcile, which removes the finalizer.
      if (deleted.signal.aborted) return {};
      throw new ReconcileError('SyncFailed', `sync failed: ${errorMessage(err)}`, { cause: err });
    } finally {
      if (this.#running.get(key) === deleted) this.#running.delete(key);
    }
    if (deleted.signal.aborted) return {};
    const verdict = summarize(report, plan.options.dryRun ?? false);
    await this.#eventOnDenial(obj, status, verdict.tags);
    status.tags = verdict.tags;
    status.counts = verdict.counts;
    status.lastSyncTime = iso(new Date());
    if (requested !== undefined) status.lastHandledReconcileAt = requested;
    status.observedGeneration = generation;
    const nextSync = this.#nextSync(spec.schedule, started);
    if (nextSync) status.nextSyncTime = iso(nextSync);
    else delete status.nextSyncTime;
    status.conditions = markReady(status.conditions, generation, verdict.ready, verdict.reason, verdict.message);
    if (!verdict.ready) throw new ReconcileError(verdict.reason, verdict.message);
    return nextSync ? { requeueAfterMs: Math.max(0, nextSync.getTime() - Date.now()) } : {};
  }

  #nextSync(schedule: ImageMirror['spec']['schedule'], started: Date): Date | undefined {
    if (!schedule) return undefined;
    try {
      if (schedule.interval) return new Date(started.getTime() + parseDuration(schedule.interval));
      if (schedule.cron) return nextCron(schedule.cron, new Date(), schedule.timeZone ?? 'UTC');
    } catch (err) {
      throw new StallingError('InvalidSpec', `spec.schedule: ${errorMessage(err)}`);
    }
    return undefined;
  }

  async #creds(ns: string, side: MirrorSide): Promise<Credentials | undefined> {
    if (side.kind !== 'registry' || !side.secret) return undefined;
    return credentialsFromSecret(this.#client, ns, side.secret, side.registry, side.repository);
  }

  /** Finalizers by merge patch guarded by resourceVersion (a conflict is retried by the queue). */
  #setFinalizers(obj: ImageMirror, finalizers: string[]): Promise<ImageMirror> {
    return this.#client.patch<ImageMirror>(this.#path(obj.metadata.namespace!, obj.metadata.name!), {
      metadata: { finalizers, resourceVersion: obj.metadata.resourceVersion },
    });
  }

  async #patchStatus(obj: ImageMirror, status: ImageMirrorStatus): Promise<void> {
    const body: Record<string, unknown> = {};
    for (const k of STATUS_KEYS) body[k] = status[k] ?? null;
    try {
      await this.#client.patch(this.#path(obj.metadata.namespace!, obj.metadata.name!, 'status'), { status: body });
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
  }

  /**
   * A Warning Event naming the tags spec.policy refused, when that set (or a reason) changed since
   * the last sync: the Ready transition Event alone says nothing when the mirror was already failing.
   */
  async #eventOnDenial(obj: ImageMirror, before: ImageMirrorStatus, after: TagStatus[]): Promise<void> {
    const denied = (tags: TagStatus[] | undefined) =>
      (tags ?? []).filter((t) => t.action === 'denied').map((t) => `${t.tag}: ${t.error ?? 'denied'}`).join('; ');
    const now = denied(after);
    if (!now || now === denied(before.tags)) return;
    const target = { ...obj, apiVersion: API_VERSION, kind: 'ImageMirror' };
    await this.#o.events.record(target, 'Warning', 'PolicyDenied', `not copied: ${now}`.slice(0, 1024));
  }

  async #eventOnTransition(obj: ImageMirror, before: ImageMirrorStatus, after: ImageMirrorStatus): Promise<void> {
    const a = getCondition(before.conditions, 'Ready');
    const b = getCondition(after.conditions, 'Ready');
    if (!b || b.status === 'Unknown' || (a && a.status === b.status && a.reason === b.reason && a.message === b.message)) return;
    const target = { ...obj, apiVersion: API_VERSION, kind: 'ImageMirror' };
    await this.#o.events.record(target, b.status === 'True' ? 'Normal' : 'Warning', b.reason, b.message);
  }
}
