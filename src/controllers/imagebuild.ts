/**
 * The ImageBuild reconciler: its steps (list and cancel superseded Pods, a finished build's pruning
 * and base-image watch, stalled, follow or start this generation's build) on the one reconcile
 * skeleton (k8s/runtime/reconcile.ts), which reads the object, keeps the finalizer (deletion
 * deletes the build Pods), judges errors (an input that can never succeed stalls the build, the
 * engine error's code as reason), patches status once and records Events on Ready transitions.
 * The build itself runs in the Pod (`stevedore build`, or a script's `stevedore buildah` verbs);
 * this process only creates, watches and deletes Pods and writes status.
 */
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { API_VERSION, GROUP, RECONCILE_REQUESTED_AT_ANNOTATION, VERSION } from '../k8s/api/common.js';
import type { ImageBuild, ImageBuildReason, ImageBuildStatus } from '../k8s/api/imagebuild.js';
import { getCondition, markStalled } from '../k8s/conditions.js';
import { ApiError, isConflict, isNotFound, resourcePath, type KubeClient, type ResourcePath } from '../k8s/runtime/client.js';
import type { ReconcileRequest, ReconcileResult, Reconciler, SecondaryWatch } from '../k8s/runtime/controller.js';
import type { EventRecorder } from '../k8s/runtime/events.js';
import type { MetaObject } from '../k8s/runtime/informer.js';
import { errorsFor, ReconcileLoop, stopWhenStalled, type ReconcileScope } from '../k8s/runtime/reconcile.js';
import { parseReference } from '../oci/reference.js';
import {
  LABEL_BUILD_UID,
  SIGNING_KEY,
  SIGNING_PASSWORD,
  buildPod,
  buildPodName,
  buildSecrets,
  buildTimeoutMs,
  userNamespaceSupport,
  type BuildPodOptions,
} from './imagebuild-pod.js';
import { errorMessage } from '../util/errors.js';
import { cacheRepository } from './imagebuild-cache.js';
import { basePollMs, knownBaseNames, movedBases, resolveBases, wantsBaseRebuild, type BaseImage } from './imagebuild-bases.js';
import { assembleIndex } from './imagebuild-index.js';
import { ANNOTATION_BUILD, planPlatforms, platformPod, platformPodName } from './imagebuild-platforms.js';
import { podOutcome, reportedBases, type BuildFailure, type BuildSuccess } from './imagebuild-result.js';
import { scriptSpecProblem } from './imagebuild-pod-script.js';
import { credentialsFromSecret, dockerConfigFromSecret, getSecret } from './imagemirror-credentials.js';
import type { TransportContext } from '../transports/types.js';
import { rfc3339Seconds } from '../util/time.js';

export const IMAGE_BUILD_FINALIZER = 'stevedore.dev/imagebuild';
export const IMAGE_BUILD_RESOURCE: ResourcePath = { group: GROUP, version: VERSION, plural: 'imagebuilds' };
const PODS: ResourcePath = { group: '', version: 'v1', plural: 'pods' };
/** Selects every build Pod Stevedore made (the secondary watch). */
export const BUILD_POD_SELECTOR = 'app.kubernetes.io/managed-by=stevedore,app.kubernetes.io/component=build';

/** Ready reasons after which a generation's build is over. */
const FINISHED = new Set(['Succeeded', 'Failed', 'DeadlineExceeded', 'Canceled']);

/** Status keys this controller owns; absent ones are sent as null so a merge patch removes them. */
const STATUS_KEYS = [
  'observedGeneration',
  'conditions',
  'lastHandledReconcileAt',
  'podName',
  'image',
  'imageDigest',
  'imageSize',
  'sourceCommit',
  'startTime',
  'completionTime',
  'failureDetails',
  'platforms',
  'signatureDigest',
  'attestations',
  'platformBuild',
  'baseImages',
] as const;

/** The Ready reasons, and the Event recorded when a base image moved. */
type Reason = ImageBuildReason | 'BaseImageChanged';
type Scope = ReconcileScope<ImageBuild, ImageBuildStatus, Reason, BuildView>;
/** Typed errors: a reason outside ImageBuild's union does not compile. */
const buildErrors = errorsFor<ImageBuildReason>();

/** A reconcile's context (`scope.ctx`): this generation's build Pod name, and the build's Pods the first step lists for the later ones. */
interface BuildView {
  readonly podName: string;
  pods: V1Pod[];
}

export interface ImageBuildReconcilerOptions {
  events: EventRecorder;
  log: Logger;
  pod: BuildPodOptions;
  /**
   * Label keys a build's spec.nodeSelector and taint keys its spec.tolerations may name
   * (`--build-pod-allowed-scheduling-keys`, the chart's buildPods.allowedSchedulingKeys). Default
   * none: a tenant who may not create Pods must not steer build Pods onto nodes the administrator
   * keeps apart. Control-plane keys are refused even when listed.
   */
  allowedSchedulingKeys?: readonly string[];
  /** The shortest spec.rebuild.interval honoured (default 1m): a tenant cannot make the controller poll registries faster. */
  minBaseImagePollMs?: number;
}

/** Node keys no tenant's build may name, whatever the administrator allows: build Pods never go to control-plane nodes on request. */
const CONTROL_PLANE_KEYS = new Set(['node-role.kubernetes.io/control-plane', 'node-role.kubernetes.io/master']);

/**
 * Refuses spec.nodeSelector and spec.tolerations keys the administrator has not allowed (and a
 * toleration with no key, which tolerates every taint). Stalls: the same spec can never pass.
 */
export function checkBuildScheduling(spec: ImageBuild['spec'], allowed: readonly string[] = []): void {
  const ok = new Set(allowed);
  const refuse = (field: string, key: string) => {
    const why = CONTROL_PLANE_KEYS.has(key)
      ? 'build Pods never run on control-plane nodes'
      : `the administrator allows ${ok.size ? [...ok].sort().join(', ') : 'no keys'} (controller flag --build-pod-allowed-scheduling-keys)`;
    return buildErrors.stalled('SchedulingNotAllowed', `${field} names "${key}", which is not allowed: ${why}`);
  };
  for (const key of Object.keys(spec.nodeSelector ?? {})) {
    if (CONTROL_PLANE_KEYS.has(key) || !ok.has(key)) throw refuse(`spec.nodeSelector`, key);
  }
  for (const [i, t] of (spec.tolerations ?? []).entries()) {
    const key = t.key ?? '';
    if (key === '')
      throw buildErrors.stalled(
        'SchedulingNotAllowed',
        `spec.tolerations[${i}] has no key, so it tolerates every taint (control-plane nodes included): not allowed`,
      );
    if (CONTROL_PLANE_KEYS.has(key) || !ok.has(key)) throw refuse(`spec.tolerations[${i}].key`, key);
  }
}

/** Image references the build Pod would only trip on after minutes of work: parsed now (invalid input stalls). */
function checkReferences(ib: ImageBuild, cacheTemplate?: string): void {
  const spec = ib.spec;
  parseReference(spec.output.image);
  if (spec.source.artifact) parseReference(spec.source.artifact.image);
  const cache = cacheRepository(ib, cacheTemplate);
  if (cache) parseReference(cache);
}

/** The build a Pod belongs to: its own name, or for a per-platform Pod the build it is part of. */
function buildOf(p: V1Pod): string {
  return p.metadata?.annotations?.[ANNOTATION_BUILD] ?? p.metadata?.name ?? '';
}

function finished(pod: V1Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

export class ImageBuildReconciler implements Reconciler<ImageBuild> {
  readonly name = 'imagebuild';
  readonly resource = IMAGE_BUILD_RESOURCE;
  readonly watches: readonly SecondaryWatch[] = [
    {
      resource: PODS,
      labelSelector: BUILD_POD_SELECTOR,
      keyOf: (o: MetaObject) => {
        const owner = (o.metadata as { ownerReferences?: { kind: string; name: string; apiVersion: string }[] }).ownerReferences?.find(
          (r) => r.kind === 'ImageBuild' && r.apiVersion === API_VERSION,
        );
        return owner && o.metadata.namespace ? `${o.metadata.namespace}/${owner.name}` : undefined;
      },
    },
  ];
  readonly #client: KubeClient;
  readonly #o: ImageBuildReconcilerOptions;
  readonly #loop: ReconcileLoop<ImageBuild, ImageBuildStatus, Reason, BuildView>;

  constructor(client: KubeClient, o: ImageBuildReconcilerOptions) {
    this.#client = client;
    this.#o = o;
    this.#loop = new ReconcileLoop(client, o.events, {
      kind: 'ImageBuild',
      resource: IMAGE_BUILD_RESOURCE,
      finalizer: IMAGE_BUILD_FINALIZER,
      statusKeys: STATUS_KEYS,
      // Status is the build's memory (which Pod, since when): a stale cached copy could start a
      // build twice or miss that its Pod was deleted. Read fresh, as before the skeleton.
      readFromCache: false,
      newContext: (s) => ({ podName: buildPodName(s.obj.metadata.name!, s.generation, s.requested), pods: [] }),
      steps: [
        (s) => this.#listAndCancel(s),
        (s) => this.#finished(s),
        // After the finished-build step (a failed build is Stalled too, and still prunes and
        // watches its bases): what is left stalled is an input that can never succeed.
        stopWhenStalled(),
        (s) => this.#follow(s),
      ],
      finalize: (obj) => this.#finalize(obj),
    });
  }

  /** Status patches do not enqueue: spec changes, rebuild requests and deletion do (and Pod changes, via watches). */
  shouldEnqueueUpdate(a: ImageBuild, b: ImageBuild): boolean {
    return (
      a.metadata.generation !== b.metadata.generation ||
      a.metadata.annotations?.[RECONCILE_REQUESTED_AT_ANNOTATION] !== b.metadata.annotations?.[RECONCILE_REQUESTED_AT_ANNOTATION] ||
      (!a.metadata.deletionTimestamp && !!b.metadata.deletionTimestamp)
    );
  }

  #path(ns: string, name: string, sub?: string): string {
    return resourcePath(IMAGE_BUILD_RESOURCE, ns, name, sub);
  }

  reconcile(req: ReconcileRequest<ImageBuild>, signal: AbortSignal): Promise<ReconcileResult> {
    return this.#loop.run(req, signal);
  }

  /**
   * Deleting an ImageBuild cancels its build. Owner references would let the garbage collector
   * remove the Pods eventually; deleting them here stops the build now (and works without one).
   */
  async #finalize(obj: ImageBuild): Promise<undefined> {
    const pods = await this.#listPods(obj);
    await Promise.all(pods.map((p) => this.#deletePod(p)));
    if (pods.some((p) => !finished(p))) {
      await this.#o.events.record(this.#target(obj), 'Normal', 'Canceled', `build canceled: ImageBuild deleted; Pod deleted`);
    }
    return undefined;
  }

  /** Lists the build's Pods; a newer spec (or rebuild request) supersedes whatever build is still running. */
  async #listAndCancel(s: Scope): Promise<undefined> {
    const { obj } = s;
    const { podName } = s.ctx;
    const pods = await this.#listPods(obj);
    s.ctx.pods = pods;
    for (const p of pods) {
      if (buildOf(p) !== podName && !finished(p) && !p.metadata?.deletionTimestamp) {
        this.#o.log.info({ pod: p.metadata?.name, imagebuild: obj.metadata.name }, 'canceling a superseded build');
        await this.#deletePod(p);
      }
    }
    return undefined;
  }

  #sameBuild(s: Scope): boolean {
    return s.status.observedGeneration === s.generation && s.status.podName === s.ctx.podName;
  }

  /** This generation's build is over: keep the newest Pods, and watch the base images if asked to. */
  async #finished(s: Scope): Promise<ReconcileResult | undefined> {
    const ready = getCondition(s.status.conditions, 'Ready');
    if (!(this.#sameBuild(s) && ready && FINISHED.has(ready.reason) && ready.observedGeneration === s.generation)) return undefined;
    const { podName, pods } = s.ctx;
    await this.#prune(s.obj, pods, podName);
    return this.#watchBases(s);
  }

  /** Follows this build's Pod (or Pods, one per platform), or starts it. */
  async #follow(s: Scope): Promise<ReconcileResult> {
    const { obj, status, generation } = s;
    const { podName, pods } = s.ctx;
    const sameBuild = this.#sameBuild(s);

    // A build fanned out to one Pod per platform (see imagebuild-platforms.ts).
    const platformPods = pods.filter((p) => p.metadata?.annotations?.[ANNOTATION_BUILD] === podName);
    if (platformPods.length > 0 || (sameBuild && status.startTime && status.platforms?.some((p) => p.podName))) {
      return this.#followPlatforms(s, podName, platformPods);
    }

    const pod = pods.find((p) => p.metadata?.name === podName);
    if (!pod) {
      if (sameBuild && status.startTime) {
        // Our Pod went away before finishing: someone deleted it (or the node was lost).
        return this.#finish(s, { reason: 'Canceled', message: `build Pod ${podName} was deleted before the build finished` });
      }
      return this.#start(s, podName);
    }

    const outcome = podOutcome(pod);
    if ('sourceCommit' in outcome && outcome.sourceCommit) status.sourceCommit = outcome.sourceCommit;
    switch (outcome.state) {
      case 'pending':
      case 'running': {
        const started = Date.parse(status.startTime ?? String(pod.metadata?.creationTimestamp ?? new Date().toISOString()));
        const timeoutMs = buildTimeoutMs(obj);
        const left = started + timeoutMs - Date.now();
        if (left <= 0) {
          await this.#deletePod(pod);
          return this.#finish(s, {
            reason: 'DeadlineExceeded',
            message: `the build did not finish within ${obj.spec.timeout ?? '1h'}; Pod ${podName} deleted`,
          });
        }
        const msg = outcome.state === 'pending' ? `build Pod ${podName} pending: ${outcome.message}` : `building ${obj.spec.output.image} in Pod ${podName}`;
        s.reconciling('Building', msg);
        status.observedGeneration = generation;
        return { requeueAfterMs: left };
      }
      case 'succeeded': {
        const r = outcome.result;
        status.image = r.image || obj.spec.output.image;
        status.imageDigest = r.digest;
        if (r.size !== undefined) status.imageSize = r.size;
        if (r.platforms?.length) status.platforms = r.platforms;
        if (r.signatureDigest) status.signatureDigest = r.signatureDigest;
        if (r.attestations?.length) status.attestations = r.attestations;
        // What the build Pod resolved beats what the controller resolved before it started.
        if (r.baseImages?.length) status.baseImages = r.baseImages;
        if (obj.spec.signing && !r.signatureDigest) {
          // The builder pushed but reported no signature (an older builder image ignoring the flags?):
          // the build has not done what the spec asks, so it must not look Ready.
          const res = this.#finish(s, {
            reason: 'AttestationFailed',
            message: `the image ${r.digest} was pushed but the builder reported no signature; is the build image a Stevedore with --sign-key?`,
          });
          await this.#prune(obj, await this.#listPods(obj), podName);
          return res;
        }
        delete status.failureDetails;
        status.completionTime = rfc3339Seconds();
        status.observedGeneration = generation;
        s.ready(true, 'Succeeded', `built and pushed ${status.image}@${r.digest}`);
        await this.#prune(obj, await this.#listPods(obj), podName);
        return wantsBaseRebuild(obj.spec) ? { requeueAfterMs: basePollMs(obj.spec, this.#o.minBaseImagePollMs) } : {};
      }
      case 'failed': {
        const res = this.#finish(s, outcome.failure);
        await this.#prune(obj, await this.#listPods(obj), podName);
        return res;
      }
    }
  }

  async #start(s: Scope, podName: string): Promise<ReconcileResult> {
    const { obj, status, generation, requested } = s;
    const ns = obj.metadata.namespace!;
    checkBuildScheduling(obj.spec, this.#o.allowedSchedulingKeys);
    checkReferences(obj, this.#o.pod.cacheRepository);
    const scriptProblem = scriptSpecProblem(obj.spec);
    if (scriptProblem) throw buildErrors.stalled('InvalidSpec', scriptProblem);
    if (obj.spec.source.script && this.#o.pod.sourcePolicy) {
      throw buildErrors.stalled(
        'InvalidSpec',
        'spec.source.script: script builds are refused while the administrator’s source policy is set (a script picks its images itself, out of the policy’s reach); use a Containerfile',
      );
    }
    // A missing Secret would leave the Pod stuck creating: say so now, and retry until it exists.
    const signing = obj.spec.signing ? [{ role: 'signing', name: obj.spec.signing.secretRef.name }] : [];
    for (const ref of [
      ...buildSecrets(obj),
      ...(obj.spec.source.git?.credentials ? [{ role: 'git', name: obj.spec.source.git.credentials.name }] : []),
      ...signing,
    ]) {
      const secret = await getSecret(this.#client, ns, ref.name, `${ref.role} credentials`);
      // Registry credentials are checked as the build Pod will read them (type, JSON, each entry),
      // reported by Secret and JSON path, never by their text.
      if (ref.role === 'source' || ref.role === 'cache' || ref.role === 'push')
        dockerConfigFromSecret(secret, `Secret ${ns}/${ref.name} (${ref.role} credentials)`);
      // The Pod would wait for a missing key for ever; name it (never the values) and retry.
      if (ref.role === 'signing') {
        const missing = [SIGNING_KEY, SIGNING_PASSWORD].filter((k) => secret.data?.[k] === undefined);
        if (missing.length)
          throw buildErrors.failed(
            'CredentialsNotFound',
            `Secret ${ns}/${ref.name} (signing key) has no ${missing.join(' or ')} (cosign generate-key-pair k8s://${ns}/${ref.name} writes both)`,
          );
      }
    }
    if (this.#o.pod.userNamespaces) await this.#checkUserNamespaces(obj);
    const plan = planPlatforms(obj.spec, (obj.spec.platforms?.length ?? 0) > 1 ? await this.#listNodes() : []);
    const platforms = obj.spec.platforms ?? [];
    const bodies =
      plan.mode === 'native' ? platforms.map((p) => platformPod(obj, this.#o.pod, requested, podName, p)) : [buildPod(obj, this.#o.pod, requested)];
    for (const body of bodies) {
      try {
        await this.#client.create(resourcePath(PODS, ns), body);
      } catch (err) {
        // The namespace's Pod Security admission refuses the Pod (procMount: Unmasked is beyond
        // "baseline" unless the API server relaxes it for user-namespaced Pods): say so, retry later.
        if (err instanceof ApiError && err.status === 403 && /violates PodSecurity/.test(err.message)) {
          throw buildErrors.failed(
            'PodSecurityRejected',
            `the namespace's Pod Security admission refused build Pod ${body.metadata?.name ?? podName}: ${err.message}`,
          );
        }
        if (!isConflict(err)) throw err; // AlreadyExists: created by an earlier reconcile whose status patch was lost
      }
    }
    for (const k of [
      'image',
      'imageDigest',
      'imageSize',
      'platforms',
      'platformBuild',
      'failureDetails',
      'completionTime',
      'sourceCommit',
      'signatureDigest',
      'attestations',
      'baseImages',
    ] as const)
      delete status[k];
    if (wantsBaseRebuild(obj.spec)) {
      const bases = await this.#resolveKnownBases(obj);
      if (bases.length) status.baseImages = bases;
    }
    status.podName = podName;
    if (platforms.length > 1)
      status.platformBuild = plan.mode === 'native' ? `native: ${platforms.join(', ')}` : `emulated in one Pod: ${platforms.join(', ')} (${plan.why})`;
    status.startTime = rfc3339Seconds();
    status.observedGeneration = generation;
    if (requested !== undefined) status.lastHandledReconcileAt = requested;
    let message: string;
    if (plan.mode === 'native') {
      status.platforms = platforms.map((p) => ({ platform: p, podName: platformPodName(podName, p) }));
      message = `building ${platforms.join(', ')} natively, one Pod per platform: ${status.platforms.map((p) => p.podName).join(', ')}`;
    } else {
      message = `build Pod ${podName} created for ${obj.spec.output.image}`;
      if (plan.why) message += `; it builds ${platforms.join(', ')} in one Pod, emulating foreign platforms (${plan.why})`;
    }
    s.reconciling('Building', message);
    await s.event(
      'Normal',
      'Building',
      plan.mode === 'native' ? message : `created build Pod ${podName}${plan.why ? ` for ${platforms.join(', ')} (${plan.why}: emulated)` : ''}`,
    );
    return { requeueAfterMs: buildTimeoutMs(obj) };
  }

  /** The bases of an inline Containerfile, resolved now; a registry that does not answer leaves them out (the build will say why). */
  async #resolveKnownBases(obj: ImageBuild): Promise<BaseImage[]> {
    try {
      const names = knownBaseNames(obj.spec);
      return names ? await resolveBases(names, (registry) => this.#registryContext(obj, registry)) : [];
    } catch (err) {
      this.#o.log.info({ imagebuild: obj.metadata.name, err: errorMessage(err) }, 'base images not resolved');
      return [];
    }
  }

  /**
   * After a finished build with spec.rebuild.onBaseImageChange: HEAD each recorded base; when one
   * moved, ask for a rebuild the way a user does (the reconcile.stevedore.dev/requestedAt
   * annotation), which gives the build a new Pod. Otherwise look again after the interval.
   */
  async #watchBases(s: Scope): Promise<ReconcileResult> {
    const { obj, status } = s;
    if (!wantsBaseRebuild(obj.spec) || !status.baseImages?.length) return {};
    const every = basePollMs(obj.spec, this.#o.minBaseImagePollMs);
    const since = Date.parse(status.completionTime ?? '') || 0;
    // A reconcile for another reason (a Pod event) does not poll early.
    if (Date.now() - since < every - 500) return { requeueAfterMs: since + every - Date.now() };
    let moved: Awaited<ReturnType<typeof movedBases>>;
    try {
      moved = await movedBases(status.baseImages, (registry) => this.#registryContext(obj, registry));
    } catch (err) {
      this.#o.log.info({ imagebuild: obj.metadata.name, err: errorMessage(err) }, 'base images not checked');
      return { requeueAfterMs: every };
    }
    if (moved.length === 0) return { requeueAfterMs: every };
    const what = moved.map((m) => `${m.name} moved from ${m.from} to ${m.to}`).join('; ');
    await s.event('Normal', 'BaseImageChanged', `${what}: building again`);
    await this.#client.patch(this.#path(obj.metadata.namespace!, obj.metadata.name!), {
      metadata: { annotations: { [RECONCILE_REQUESTED_AT_ANNOTATION]: new Date().toISOString() }, resourceVersion: obj.metadata.resourceVersion },
    });
    return {};
  }

  /** Registry access for HEAD requests on an ImageBuild's behalf: its push Secret for the output's registry, anonymous elsewhere; never the controller's own credentials. */
  async #registryContext(obj: ImageBuild, registry: string): Promise<TransportContext> {
    const out = parseReference(obj.spec.output.image);
    const tls = obj.spec.output.insecure ? { tlsVerify: false } : {};
    if (registry !== out.registry || !obj.spec.output.pushSecret) return { ambientCredentials: false, ...tls };
    return this.#pushContext(obj);
  }

  /** Nodes the build Pods could run on, or undefined when they cannot be listed (RBAC). */
  async #listNodes(): Promise<V1Node[] | undefined> {
    try {
      return (await this.#client.get<{ items: V1Node[] }>('/api/v1/nodes')).items;
    } catch (err) {
      this.#o.log.debug({ err: errorMessage(err) }, 'cannot list nodes: multi-platform builds run in one Pod');
      return undefined;
    }
  }

  /**
   * Follows the per-platform Pods of a native multi-platform build: any failure fails the build
   * (the other Pods are deleted); when all have pushed, the index is written under the output tag.
   */
  async #followPlatforms(s: Scope, podName: string, pods: V1Pod[]): Promise<ReconcileResult> {
    const { obj, status, generation } = s;
    const entries = (obj.spec.platforms ?? []).map((platform) => {
      const name = platformPodName(podName, platform);
      return { platform, podName: name, pod: pods.find((p) => p.metadata?.name === name) };
    });
    const stopOthers = async () => {
      for (const p of pods) if (!finished(p) && !p.metadata?.deletionTimestamp) await this.#deletePod(p);
    };
    const gone = entries.find((e) => !e.pod);
    if (gone) {
      await stopOthers();
      const res = this.#finish(s, { reason: 'Canceled', message: `build Pod ${gone.podName} (${gone.platform}) was deleted before the build finished` });
      status.platforms = entries.map((e) => ({ platform: e.platform, podName: e.podName }));
      return res;
    }
    const outcomes = entries.map((e) => ({ ...e, outcome: podOutcome(e.pod!) }));
    const commit = outcomes.map((e) => ('sourceCommit' in e.outcome ? e.outcome.sourceCommit : undefined)).find(Boolean);
    if (commit) status.sourceCommit = commit;
    const platformStatus = () =>
      outcomes.map((e) => ({ platform: e.platform, ...(e.outcome.state === 'succeeded' ? { digest: e.outcome.result.digest } : {}), podName: e.podName }));
    status.platforms = platformStatus();

    const failed = outcomes.find((e) => e.outcome.state === 'failed');
    if (failed && failed.outcome.state === 'failed') {
      await stopOthers();
      const f = failed.outcome.failure;
      const res = this.#finish(s, { reason: f.reason, message: `${failed.platform} (Pod ${failed.podName}): ${f.message}` });
      status.platforms = platformStatus();
      await this.#prune(obj, await this.#listPods(obj), podName);
      return res;
    }
    if (outcomes.every((e) => e.outcome.state === 'succeeded')) {
      const images = outcomes.map((e) => ({ platform: e.platform, digest: (e.outcome as { result: { digest: string } }).result.digest }));
      const index = await assembleIndex(obj.spec.output.image, images, await this.#pushContext(obj));
      status.image = obj.spec.output.image;
      status.imageDigest = index.digest;
      status.imageSize = outcomes.reduce((n, e) => n + ((e.outcome as { result: { size?: number } }).result.size ?? 0), index.size);
      const bases = reportedBases(outcomes.map((e) => (e.outcome as { result: BuildSuccess }).result));
      if (bases.length) status.baseImages = bases;
      delete status.failureDetails;
      status.completionTime = rfc3339Seconds();
      status.observedGeneration = generation;
      s.ready(
        true,
        'Succeeded',
        `built ${images.map((i) => i.platform).join(', ')} natively in ${images.length} Pods and pushed the index ${status.image}@${index.digest}`,
      );
      await this.#prune(obj, await this.#listPods(obj), podName);
      return wantsBaseRebuild(obj.spec) ? { requeueAfterMs: basePollMs(obj.spec, this.#o.minBaseImagePollMs) } : {};
    }
    const started = Date.parse(status.startTime ?? new Date().toISOString());
    const left = started + buildTimeoutMs(obj) - Date.now();
    if (left <= 0) {
      await stopOthers();
      return this.#finish(s, {
        reason: 'DeadlineExceeded',
        message: `the build did not finish within ${obj.spec.timeout ?? '1h'}; Pods ${entries.map((e) => e.podName).join(', ')} deleted`,
      });
    }
    const state = (o: (typeof outcomes)[number]['outcome']) =>
      o.state === 'pending' ? `pending: ${o.message}` : o.state === 'succeeded' ? `pushed ${o.result.digest}` : o.state;
    s.reconciling('Building', `building natively: ${outcomes.map((e) => `${e.platform} in Pod ${e.podName} (${state(e.outcome)})`).join(', ')}`);
    status.observedGeneration = generation;
    return { requeueAfterMs: left };
  }

  /** How the controller reaches the output repository: only the ImageBuild's push Secret, never its own credentials. */
  async #pushContext(obj: ImageBuild): Promise<TransportContext> {
    const ref = parseReference(obj.spec.output.image);
    const secret = obj.spec.output.pushSecret?.name;
    const credentials = secret ? await credentialsFromSecret(this.#client, obj.metadata.namespace!, secret, ref.registry, ref.repository) : undefined;
    return { ambientCredentials: false, ...(credentials ? { credentials } : {}), ...(obj.spec.output.insecure ? { tlsVerify: false } : {}) };
  }

  /**
   * A Pod with hostUsers: false on nodes without user-namespace support never starts (its sandbox is
   * refused): say so in status instead, and look again later. Nodes the controller may not list
   * (RBAC) or that report nothing leave the decision to the kubelet.
   */
  async #checkUserNamespaces(obj: ImageBuild): Promise<void> {
    let nodes: V1Node[];
    try {
      nodes = (await this.#client.get<{ items: V1Node[] }>('/api/v1/nodes')).items;
    } catch (err) {
      this.#o.log.debug({ err: errorMessage(err) }, 'cannot list nodes: user-namespace support not checked');
      return;
    }
    const support = userNamespaceSupport(nodes, obj.spec.nodeSelector);
    if (support.supported === false) throw buildErrors.waiting('UserNamespacesUnsupported', support.message, 120_000);
  }

  /** A finished failure: terminal for this generation (Stalled), until the spec changes or a rebuild is requested. */
  #finish(s: Scope, failure: BuildFailure): ReconcileResult {
    const { status, generation } = s;
    const reason: ImageBuildReason =
      failure.reason === 'DeadlineExceeded' ? 'DeadlineExceeded' : failure.reason === 'Canceled' || failure.reason === 'Interrupted' ? 'Canceled' : 'Failed';
    status.failureDetails = { reason: failure.reason, message: failure.message.slice(0, 32768) };
    status.completionTime = rfc3339Seconds();
    status.observedGeneration = generation;
    for (const k of ['imageDigest', 'imageSize', 'platforms', 'signatureDigest', 'attestations'] as const) delete status[k];
    status.conditions = markStalled(status.conditions, generation, reason, `${failure.reason}: ${failure.message}`.slice(0, 32768));
    return {};
  }

  /**
   * Keeps the finished Pods of the newest N succeeded and N failed builds (their logs), deletes the
   * rest. A build is its Pod, or all the per-platform Pods of a native multi-platform build.
   */
  async #prune(obj: ImageBuild, pods: V1Pod[], current: string): Promise<void> {
    const keep = { Succeeded: obj.spec.successfulBuildsHistoryLimit ?? 1, Failed: obj.spec.failedBuildsHistoryLimit ?? 3 };
    const builds = new Map<string, V1Pod[]>();
    for (const p of pods) {
      if (!finished(p) || p.metadata?.deletionTimestamp) continue;
      const b = buildOf(p);
      builds.set(b, [...(builds.get(b) ?? []), p]);
    }
    const newest = (ps: V1Pod[]) =>
      ps
        .map((p) => String(p.metadata?.creationTimestamp ?? ''))
        .sort()
        .at(-1) ?? '';
    const done = [...builds.entries()].sort(([a, pa], [b, pb]) => {
      if (a === current) return -1;
      if (b === current) return 1;
      return newest(pb).localeCompare(newest(pa));
    });
    const seen = { Succeeded: 0, Failed: 0 };
    for (const [, ps] of done) {
      const phase = ps.some((p) => p.status!.phase === 'Failed') ? 'Failed' : 'Succeeded';
      if (++seen[phase] > keep[phase]) for (const p of ps) await this.#deletePod(p);
    }
  }

  async #listPods(obj: ImageBuild): Promise<V1Pod[]> {
    const sel = encodeURIComponent(`${LABEL_BUILD_UID}=${obj.metadata.uid}`);
    const list = await this.#client.get<{ items: V1Pod[] }>(`${resourcePath(PODS, obj.metadata.namespace!)}?labelSelector=${sel}`);
    return list.items;
  }

  async #deletePod(p: V1Pod): Promise<void> {
    try {
      await this.#client.json('DELETE', resourcePath(PODS, p.metadata!.namespace!, p.metadata!.name!), {
        body: { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { uid: p.metadata!.uid } },
      });
    } catch (err) {
      if (!isNotFound(err) && !isConflict(err)) throw err;
    }
  }

  #target(obj: ImageBuild) {
    return { ...obj, apiVersion: API_VERSION, kind: 'ImageBuild' };
  }
}
