/**
 * The ImageMirror reconciler: its steps (suspend, stalled, plan, up to date, sync) on the one
 * reconcile skeleton (k8s/runtime/reconcile.ts), which reads the object, keeps the finalizer,
 * judges errors, patches status once and records Events on Ready transitions.
 */
import type { Logger } from 'pino';
import { sync, type SyncReport } from '../copy/sync.js';
import { GROUP, RECONCILE_REQUESTED_AT_ANNOTATION, VERSION } from '../k8s/api/common.js';
import type { ImageMirror, ImageMirrorReason, ImageMirrorStatus, TagStatus } from '../k8s/api/imagemirror.js';
import { getCondition } from '../k8s/conditions.js';
import type { KubeClient, ResourcePath } from '../k8s/runtime/client.js';
import type { ReconcileRequest, ReconcileResult, Reconciler } from '../k8s/runtime/controller.js';
import type { EventRecorder } from '../k8s/runtime/events.js';
import { ReconcileLoop, requestHandled, stopWhenStalled, type ReconcileScope } from '../k8s/runtime/reconcile.js';
import type { Credentials } from '../registry/credentials.js';
import type { TransportContext } from '../transports/types.js';
import { errorMessage } from '../util/errors.js';
import { credentialsFromSecret } from './imagemirror-credentials.js';
import { caDirectory, caFromSecret } from './imagemirror-tls.js';
import { syncFromLayout } from '../copy/sync-layout.js';
import { layoutDirectory } from './imagemirror-layout.js';
import { describeSide, planMirror, registryContext, syncSpec, syncTarget, type MirrorSide, type RegistrySide } from './imagemirror-plan.js';
import { policyFromSecret } from './imagemirror-policy.js';
import type { ImageMirrorMetrics } from './imagemirror-metrics.js';
import { mirrorErrors, summarize } from './imagemirror-status.js';
import { parseDuration } from '../util/duration.js';
import { nextCron } from './schedule.js';
import { rfc3339Seconds } from '../util/time.js';

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
  /** Per-mirror metrics (imagemirror-metrics.ts), in the manager's registry; none without it. */
  metrics?: ImageMirrorMetrics;
}

/** Status keys this controller owns; absent ones are sent as null so a merge patch removes them. */
const STATUS_KEYS = ['observedGeneration', 'conditions', 'lastHandledReconcileAt', 'lastSyncTime', 'nextSyncTime', 'counts', 'tags'] as const;

type Scope = ReconcileScope<ImageMirror, ImageMirrorStatus, ImageMirrorReason>;

export class ImageMirrorReconciler implements Reconciler<ImageMirror> {
  readonly name = 'imagemirror';
  readonly resource = IMAGE_MIRROR_RESOURCE;
  readonly #client: KubeClient;
  readonly #o: ImageMirrorReconcilerOptions;
  readonly #loop: ReconcileLoop<ImageMirror, ImageMirrorStatus, ImageMirrorReason>;

  constructor(client: KubeClient, o: ImageMirrorReconcilerOptions) {
    this.#client = client;
    this.#o = o;
    this.#loop = new ReconcileLoop(client, o.events, {
      kind: 'ImageMirror',
      resource: IMAGE_MIRROR_RESOURCE,
      // On deletion mirrored images stay; only the mirror's metric series go.
      finalizer: IMAGE_MIRROR_FINALIZER,
      finalize: async (m) => {
        o.metrics?.remove(m.metadata.namespace ?? 'default', m.metadata.name ?? '');
        return undefined;
      },
      statusKeys: STATUS_KEYS,
      unknownErrorReason: 'SyncFailed',
      steps: [(s) => this.#suspended(s), stopWhenStalled(), (s) => this.#upToDate(s), (s) => this.#sync(s)],
    });
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

  reconcile(req: ReconcileRequest<ImageMirror>, signal: AbortSignal): Promise<ReconcileResult> {
    return this.#loop.run(req, signal);
  }

  async #suspended(s: Scope): Promise<ReconcileResult | undefined> {
    if (!s.obj.spec.suspend) return undefined;
    s.ready(getCondition(s.status.conditions, 'Ready')?.status === 'True', 'Suspended', 'the mirror is suspended: no sync is scheduled');
    s.status.observedGeneration = s.generation;
    delete s.status.nextSyncTime;
    return {};
  }

  /** Synced for this generation and request, and no scheduled sync due: done (the spec is planned first, so an invalid one stalls). */
  async #upToDate(s: Scope): Promise<ReconcileResult | undefined> {
    const { status, generation, obj } = s;
    planMirror(obj.spec);
    const now = new Date();
    const ready = getCondition(status.conditions, 'Ready');
    const upToDate =
      status.observedGeneration === generation &&
      ready?.status === 'True' &&
      ready.reason === 'Succeeded' &&
      ready.observedGeneration === generation &&
      status.lastSyncTime !== undefined &&
      requestHandled(status, s.requested);
    const next = status.nextSyncTime ? new Date(status.nextSyncTime) : undefined;
    if (!upToDate || (obj.spec.schedule && !(next && next > now))) return undefined;
    return next && obj.spec.schedule ? { requeueAfterMs: next.getTime() - now.getTime() } : {};
  }

  async #sync(s: Scope): Promise<ReconcileResult> {
    const { obj, status, generation } = s;
    const spec = obj.spec;
    const ns = obj.metadata.namespace ?? 'default';
    const plan = planMirror(spec);

    // Tell the world work is under way (kstatus InProgress) before the long part.
    s.reconciling('Progressing', `syncing ${describeSide(plan.source)}`);
    await s.progress();

    const [srcCreds, destCreds, policy, srcDir, destDir] = await Promise.all([
      this.#creds(ns, plan.source),
      this.#creds(ns, plan.destination),
      spec.policy ? policyFromSecret(this.#client, ns, spec.policy) : undefined,
      plan.source.kind === 'layout' ? layoutDirectory(this.#o.layoutRoot, ns, 'source', plan.source) : undefined,
      plan.destination.kind === 'layout' ? layoutDirectory(this.#o.layoutRoot, ns, 'destination', plan.destination) : undefined,
    ]);
    // Private CAs: written for this sync only, used by this mirror's clients only (imagemirror-tls.ts).
    const [srcCa, destCa] = await Promise.all([
      this.#ca(ns, plan.source, 'spec.source.registry.caSecretRef'),
      this.#ca(ns, plan.destination, 'spec.destination.registry.caSecretRef'),
    ]);
    const caDirs = await Promise.all([srcCa, destCa].map((pem) => (pem ? caDirectory(pem) : undefined)));
    const [srcCertDir, destCertDir] = caDirs.map((d) => d?.dir);
    const started = new Date();
    let report: SyncReport;
    const run = this.#o.sync ?? sync;
    const parallelImages = this.#o.parallelImages ?? 4;
    const key = `${ns}/${obj.metadata.name}`;
    const deleted = new AbortController();
    this.#running.set(key, deleted);
    const signal = AbortSignal.any([s.signal, deleted.signal]);
    try {
      if (plan.source.kind === 'layout') {
        const dest = plan.destination as RegistrySide;
        report = await syncFromLayout(
          srcDir!,
          plan.selection,
          { registry: dest.registry, repository: dest.repository, context: { ...registryContext(dest, destCreds, destCertDir), ...NO_AMBIENT } },
          { platforms: plan.options.platforms, dryRun: plan.options.dryRun, ...(policy ? { policy } : {}), parallelImages, signal },
        );
      } else {
        const target =
          plan.destination.kind === 'layout' ? syncTarget({ kind: 'layout', dir: destDir! }, undefined) : syncTarget(plan.destination, destCreds, destCertDir);
        if (target.kind === 'registry') target.context = { ...target.context, ...NO_AMBIENT };
        report = await run([syncSpec(plan.source, plan.selection, srcCreds, srcCertDir)], target, {
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
      this.#o.metrics?.record(ns, obj.metadata.name ?? '', { outcome: 'failed', copied: 0, failures: 1, bytes: 0 });
      throw mirrorErrors.failed('SyncFailed', `sync failed: ${errorMessage(err)}`, err);
    } finally {
      if (this.#running.get(key) === deleted) this.#running.delete(key);
      await Promise.all(caDirs.map((d) => d?.dispose()));
    }
    if (deleted.signal.aborted) return {};
    const verdict = summarize(report, plan.options.dryRun ?? false);
    const failures = (verdict.counts.failed ?? 0) + (verdict.counts.denied ?? 0);
    this.#o.metrics?.record(ns, obj.metadata.name ?? '', {
      outcome: failures > 0 || !verdict.ready ? 'partial' : 'succeeded',
      copied: verdict.counts.copied ?? 0,
      failures,
      bytes: report.items.reduce((n, i) => n + (i.bytes ?? 0), 0),
    });
    await this.#eventOnDenial(s, verdict.tags);
    status.tags = verdict.tags;
    status.counts = verdict.counts;
    status.lastSyncTime = rfc3339Seconds();
    if (s.requested !== undefined) status.lastHandledReconcileAt = s.requested;
    status.observedGeneration = generation;
    const nextSync = this.#nextSync(spec.schedule, started);
    if (nextSync) status.nextSyncTime = rfc3339Seconds(nextSync);
    else delete status.nextSyncTime;
    s.ready(verdict.ready, verdict.reason, verdict.message);
    if (!verdict.ready) throw mirrorErrors.failed(verdict.reason, verdict.message);
    return nextSync ? { requeueAfterMs: Math.max(0, nextSync.getTime() - Date.now()) } : {};
  }

  #nextSync(schedule: ImageMirror['spec']['schedule'], started: Date): Date | undefined {
    if (!schedule) return undefined;
    try {
      if (schedule.interval) return new Date(started.getTime() + parseDuration(schedule.interval));
      if (schedule.cron) return nextCron(schedule.cron, new Date(), schedule.timeZone ?? 'UTC');
    } catch (err) {
      throw mirrorErrors.stalled('InvalidSpec', `spec.schedule: ${errorMessage(err)}`);
    }
    return undefined;
  }

  async #ca(ns: string, side: MirrorSide, field: string): Promise<string | undefined> {
    if (side.kind !== 'registry' || !side.ca) return undefined;
    return caFromSecret(this.#client, ns, side.ca, field);
  }

  async #creds(ns: string, side: MirrorSide): Promise<Credentials | undefined> {
    if (side.kind !== 'registry' || !side.secret) return undefined;
    return credentialsFromSecret(this.#client, ns, side.secret, side.registry, side.repository);
  }

  /**
   * A Warning Event naming the tags spec.policy refused, when that set (or a reason) changed since
   * the last sync: the Ready transition Event alone says nothing when the mirror was already failing.
   */
  async #eventOnDenial(s: Scope, after: TagStatus[]): Promise<void> {
    const denied = (tags: TagStatus[] | undefined) =>
      (tags ?? [])
        .filter((t) => t.action === 'denied')
        .map((t) => `${t.tag}: ${t.error ?? 'denied'}`)
        .join('; ');
    const now = denied(after);
    if (!now || now === denied(s.status.tags)) return;
    await s.event('Warning', 'PolicyDenied', `not copied: ${now}`.slice(0, 1024));
  }
}
