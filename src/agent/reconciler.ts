/**
 * The node agent's reconciler: for each ContainerRun bound to this node (spec.nodeName or the
 * controller's status.nodeName) it pulls, starts, watches and finishes the container of the
 * current attempt, and owns the run's status from binding on. Reads top to bottom in the same
 * shape as the controllers: get → deletion/finalizer → the attempt's state → one status patch.
 *
 * Attempt n of a run is the container with id sha256(uid, n) in the node's store: the store's
 * records, not this process's memory, say whether it is running or how it ended, so a restarted
 * agent reattaches to running containers and never starts a finished attempt again.
 */
import type { Logger } from 'pino';
import { API_VERSION, GROUP, VERSION } from '../k8s/api/common.js';
import { CONTAINER_RUN_FINALIZER, type ContainerRun, type ContainerRunStatus } from '../k8s/api/containerrun.js';
import { markReady, markReconciling, markStalled } from '../k8s/conditions.js';
import { isNotFound, resourcePath, type KubeClient, type ResourcePath } from '../k8s/runtime/client.js';
import type { ReconcileRequest, ReconcileResult, Reconciler } from '../k8s/runtime/controller.js';
import type { EventRecorder } from '../k8s/runtime/events.js';
import { applyVerdict, judgeReconcileError } from '../k8s/runtime/reconcile-errors.js';
import { parseDuration } from '../util/duration.js';
import { dirname, join } from 'node:path';
import { ensureSearchable, type RunOptions } from '../runtime/container.js';
import type { ContainerRecord } from '../runtime/containers.js';
import type { RuntimeName } from '../runtime/oci-runtime.js';
import { containerState, removeContainer, signalContainer, stopContainer } from '../runtime/lifecycle/index.js';
import type { ImageStore } from '../runtime/store/index.js';
import { errorMessage } from '../util/errors.js';
import { ConfigSourceError, ConfigSources } from './config-sources.js';
import { resolveEnv } from './env.js';
import { launchDetached, type LaunchContainer } from './launch.js';
import { attemptContainerId, attemptContainerName } from './naming.js';
import { pullCredentials } from './pull-credentials.js';
import { judgeRunImage } from './run-policy.js';
import type { Policy } from '../policy/types.js';
import { readLogTail } from './log-tail.js';
import { restartDelayMs, signalOfExitCode } from './status-text.js';
import { emptyDirOverLimit, evictionNote, prepareVolumes, quantityBytes, releaseVolumes, runVolumesDir } from './volumes.js';
import { readFile, writeFile } from 'node:fs/promises';
import { privilegeLevel, privilegeViolations, type NodeTaint } from './privileges.js';
import { IdsExhaustedError, type UserNamespaceAllocator } from './userns.js';
import { credentialsIdentity, type PullRecords } from './pull-records.js';
import { parseReference } from '../oci/reference.js';
import { rfc3339Seconds } from '../util/time.js';

export const CONTAINER_RUN_RESOURCE: ResourcePath = { group: GROUP, version: VERSION, plural: 'containerruns' };

export interface AgentReconcilerOptions {
  nodeName: string;
  store: ImageStore;
  /** How a container is started (default: the runtime's detached monitor). */
  launch?: LaunchContainer;
  /** Runtime when the spec names none (default runc). */
  runtime?: RuntimeName;
  /** SIGTERM → SIGKILL grace on timeout and delete (default 10 s). */
  stopGraceSeconds?: number;
  /** Restart back-off base and cap (default 10 s and 5 min). */
  restartBackoff?: { baseMs: number; maxMs: number };
  /** How often a running attempt is looked at (exit, log tail); default 1 s. */
  pollMs?: number;
  /** The node's containers-policy.json: an image it refuses is not pulled or run (PolicyDenied). */
  policy?: Policy;
  /** Rotate each container's log past this size (default 10 MiB, the kubelet's containerLogMaxSize). */
  logMaxBytes?: number;
  /** How often a running run's disk emptyDirs are measured against their sizeLimit (default 10 s). */
  diskCheckMs?: number;
  /** Least time between two writes of a running run's status.logTail (default 5 s). */
  logTailMs?: number;
  /** Who fetched each stored image: reuse by another run is re-authorised (KEP-2535). */
  pullRecords: PullRecords;
  /** Hands each run a block of ids for a user namespace of its own. */
  userns: UserNamespaceAllocator;
  events: EventRecorder;
  log: Logger;
}

/** Where the run is bound: the user's spec.nodeName, else the controller's choice. */
export function boundNode(run: ContainerRun): string | undefined {
  return run.spec?.nodeName ?? run.status?.nodeName;
}

const TERMINAL = new Set(['Succeeded', 'Failed']);
const DEFAULT_BACKOFF_LIMIT = 3;
/** Pulls tried per attempt before it fails with ErrImagePull. */
const PULL_TRIES = 3;

interface AttemptOutcome {
  exitCode?: number;
  reason: string;
  message: string;
  startedAt?: string;
  finishedAt: string;
  logTail?: string;
}

/** CPU quantity (`500m`, `2`) as a fraction of CPUs. */
function cpus(q: string | number | undefined): number | undefined {
  if (q === undefined) return undefined;
  if (typeof q === 'number') return q;
  return q.endsWith('m') ? Number(q.slice(0, -1)) / 1000 : Number(q);
}

export class ContainerRunAgentReconciler implements Reconciler<ContainerRun> {
  readonly name = 'containerrun-agent';
  readonly resource = CONTAINER_RUN_RESOURCE;
  readonly #client: KubeClient;
  readonly #o: AgentReconcilerOptions;
  /** Failed pulls per run uid, for the pull back-off (reset by a successful pull). */
  readonly #pullFailures = new Map<string, number>();
  /** Looks at a run's missing ConfigMaps/Secrets so far, for the growing wait between looks. */
  readonly #configWaits = new Map<string, number>();
  /** When each running run's disk emptyDirs were last measured. */
  readonly #diskChecked = new Map<string, number>();
  /** Run uid → earliest time of its next start (pull back-off, wait for ConfigMaps/Secrets). */
  readonly #notBefore = new Map<string, number>();
  /** When each running run's logTail was last written (it is written at most every logTailMs). */
  readonly #tailWritten = new Map<string, number>();

  constructor(client: KubeClient, o: AgentReconcilerOptions) {
    this.#client = client;
    this.#o = o;
  }

  /**
   * Only runs bound to this node concern it (and a run just moved away, to forget it), and only
   * changes the agent did not make itself: the spec, the binding, deletion, finalizers, annotations.
   * Its own status writes come back as watch events; enqueuing them would reconcile each run in a
   * loop (running runs are polled, waiting ones requeued on their own schedule).
   */
  shouldEnqueueUpdate(a: ContainerRun, b: ContainerRun): boolean {
    if (boundNode(b) !== this.#o.nodeName && boundNode(a) !== this.#o.nodeName) return false;
    return (
      a.metadata.generation !== b.metadata.generation ||
      boundNode(a) !== boundNode(b) ||
      !!a.metadata.deletionTimestamp !== !!b.metadata.deletionTimestamp ||
      JSON.stringify(a.metadata.finalizers ?? []) !== JSON.stringify(b.metadata.finalizers ?? []) ||
      JSON.stringify(a.metadata.annotations ?? {}) !== JSON.stringify(b.metadata.annotations ?? {})
    );
  }

  #path(run: ContainerRun, sub?: string): string {
    return resourcePath(CONTAINER_RUN_RESOURCE, run.metadata.namespace, run.metadata.name, sub);
  }

  async reconcile(req: ReconcileRequest, signal: AbortSignal): Promise<ReconcileResult> {
    let run: ContainerRun;
    try {
      run = await this.#client.get<ContainerRun>(resourcePath(CONTAINER_RUN_RESOURCE, req.namespace, req.name));
    } catch (err) {
      if (isNotFound(err)) return {};
      throw err;
    }
    if (boundNode(run) !== this.#o.nodeName) return this.#releaseMoved(run);
    if (run.metadata.deletionTimestamp) return this.#finalize(run);
    const status = run.status ?? {};
    if (status.phase && TERMINAL.has(status.phase)) return this.#stopEnded(run);

    const attempt = status.restartCount ?? 0;
    const id = attemptContainerId(run.metadata.uid!, attempt);
    const st = await containerState(this.#o.store, id);
    if (st.state === 'running') return this.#observeRunning(run, st.record);
    if (st.state === 'exited') return this.#finishAttempt(run, await this.#outcome(st.record, run));
    if (st.state === 'lost') {
      // Nobody watches that container any more: make sure it does not run on unobserved.
      await stopContainer(this.#o.store, id, { graceMs: 0 });
      const outcome = await this.#outcome(st.record);
      return this.#finishAttempt(run, { ...outcome, exitCode: undefined, reason: 'Error', message: 'the container was lost: its monitor process is gone (was the node restarted?)' });
    }
    // Not started yet: after a failed attempt, wait out the restart back-off first.
    if (attempt > 0 && status.finishedAt) {
      const due = Date.parse(status.finishedAt) + this.#restartDelay(attempt - 1);
      if (due > Date.now()) return { requeueAfterMs: due - Date.now() };
    }
    // A pull back-off or a wait for a missing ConfigMap/Secret holds whatever event comes in meanwhile
    // (the controller's finalizer, a label): only its own timer ends it, as the kubelet's image back-off.
    const notBefore = this.#notBefore.get(run.metadata.uid!);
    if (notBefore !== undefined && notBefore > Date.now()) return { requeueAfterMs: notBefore - Date.now() };
    this.#notBefore.delete(run.metadata.uid!);
    await this.#stopEarlierAttempts(run, attempt);
    return this.#judged(run, signal, () => this.#start(run, attempt, id, signal));
  }

  /**
   * Starting an attempt goes through the one error mapping (k8s/runtime/reconcile-errors.ts): an
   * error no retry can mend (an engine error that is not retryable: an image reference that is not
   * one, a runtime this node does not have) fails the run, Stalled=True with the error's code as
   * reason, and the queue forgets it; any other error is retried by the queue as before.
   */
  async #judged(run: ContainerRun, signal: AbortSignal, start: () => Promise<ReconcileResult>): Promise<ReconcileResult> {
    try {
      return await start();
    } catch (err) {
      if (signal.aborted) throw err;
      const verdict = judgeReconcileError(err);
      if (verdict.kind !== 'stalled') throw err;
      const gen = run.metadata.generation ?? 0;
      const status: ContainerRunStatus = structuredClone(run.status ?? {});
      applyVerdict(status, verdict, { generation: gen });
      this.#o.log.warn({ run: `${run.metadata.namespace}/${run.metadata.name}`, reason: verdict.reason, err: verdict.message }, 'the run can never start: failed');
      await this.#patchStatus(run, {
        phase: 'Failed',
        reason: verdict.reason,
        message: verdict.message,
        nodeName: this.#o.nodeName,
        observedGeneration: gen,
        finishedAt: rfc3339Seconds(),
        conditions: status.conditions,
      });
      await this.#event(run, 'Warning', verdict.reason, verdict.message);
      await this.#runEnded(run);
      throw verdict.error;
    }
  }

  /**
   * A terminal run whose container still runs here (the controller marked it Failed/NodeLost while
   * this agent was away): the API says it ended, so it must not go on unobserved. Stopped and removed.
   */
  async #stopEnded(run: ContainerRun): Promise<ReconcileResult> {
    for (let n = 0; n <= (run.status?.restartCount ?? 0); n++) {
      const id = attemptContainerId(run.metadata.uid!, n);
      const st = await containerState(this.#o.store, id);
      if (st.state !== 'running' && st.state !== 'lost') continue;
      this.#o.log.warn({ run: `${run.metadata.namespace}/${run.metadata.name}`, attempt: n, phase: run.status?.phase }, 'the run has ended but its container still runs here: stopping and removing it');
      await removeContainer(this.#o.store, id, { force: true, graceMs: this.#graceMs });
    }
    return {};
  }

  /**
   * An earlier attempt can still run here when the run was failed over while this agent was away
   * and then bound to this node again: stop it before the next attempt starts (its log is kept).
   */
  async #stopEarlierAttempts(run: ContainerRun, attempt: number): Promise<void> {
    for (let n = 0; n < attempt; n++) {
      const id = attemptContainerId(run.metadata.uid!, n);
      const st = await containerState(this.#o.store, id);
      if (st.state !== 'running' && st.state !== 'lost') continue;
      this.#o.log.warn({ run: `${run.metadata.namespace}/${run.metadata.name}`, attempt: n }, 'an earlier attempt still runs: stopping it');
      await stopContainer(this.#o.store, id, { graceMs: 0 });
    }
  }

  get #graceMs(): number {
    return (this.#o.stopGraceSeconds ?? 10) * 1000;
  }

  #restartDelay(n: number): number {
    const b = this.#o.restartBackoff;
    return b ? restartDelayMs(n, b.baseMs, b.maxMs) : restartDelayMs(n);
  }

  async #start(run: ContainerRun, attempt: number, id: string, signal: AbortSignal): Promise<ReconcileResult> {
    const ns = run.metadata.namespace!;
    const gen = run.metadata.generation ?? 0;
    const spec = run.spec;
    const log = this.#o.log.child({ run: `${ns}/${run.metadata.name}`, attempt });
    const refused = await this.#privilegeViolations(run);
    if (refused.length > 0) return this.#notGranted(run, refused);
    // A reference no registry can have is final (InvalidInputError, not retryable): not a pull to back off from.
    parseReference(spec.image.replace(/^docker:\/\//, ''));
    let idMappings: RunOptions['idMappings'];
    if (spec.hostUsers !== true) {
      try {
        idMappings = await this.#o.userns.allocate(run.metadata.uid!);
      } catch (err) {
        if (!(err instanceof IdsExhaustedError)) throw err;
        await this.#patchStatus(run, {
          phase: 'Pending',
          reason: 'UserNamespaceUnavailable',
          message: err.message,
          conditions: markReconciling(run.status?.conditions, gen, 'UserNamespaceUnavailable', err.message),
        });
        return { requeueAfterMs: 30_000 };
      }
    }
    const sources = new ConfigSources(this.#client, ns);
    // The run's ConfigMaps and Secrets first: a run waiting for one stays Pending, unchanged (no
    // status write, no pull) until it appears, as a kubelet's CreateContainerConfigError.
    let env: string[];
    let mounts: Awaited<ReturnType<typeof prepareVolumes>>;
    try {
      env = await resolveEnv(spec, sources);
      const volumesDir = runVolumesDir(this.#o.store.root, run.metadata.uid!);
      mounts = await prepareVolumes(spec, volumesDir, sources, { idMap: idMappings, user: spec.user });
      // The runtime binds them from inside the run's user namespace, as an unprivileged node id.
      if (idMappings && mounts.binds.length > 0) await ensureSearchable([this.#o.store.root, join(this.#o.store.root, 'agent'), dirname(volumesDir), volumesDir]);
    } catch (err) {
      if (!(err instanceof ConfigSourceError)) throw err;
      if (err.reason === 'InvalidSpec') return this.#invalidSpec(run, err.message);
      const waits = (this.#configWaits.get(run.metadata.uid!) ?? 0) + 1;
      this.#configWaits.set(run.metadata.uid!, waits);
      await this.#patchStatus(run, {
        phase: 'Pending',
        nodeName: this.#o.nodeName,
        reason: err.reason,
        message: err.message,
        observedGeneration: gen,
        conditions: markReconciling(run.status?.conditions, gen, err.reason, err.message),
      });
      await this.#event(run, 'Warning', err.reason, err.message);
      // 10 s, 20 s, 40 s, ... up to 5 min between looks.
      return this.#waitBeforeRetry(run, Math.min(300_000, 10_000 * 2 ** Math.min(waits - 1, 5)));
    }
    this.#configWaits.delete(run.metadata.uid!);
    await this.#patchStatus(run, {
      phase: 'Pulling',
      nodeName: this.#o.nodeName,
      reason: 'Pulling',
      message: `pulling ${spec.image}`,
      observedGeneration: gen,
      conditions: markReconciling(run.status?.conditions, gen, 'Pulling', `pulling ${spec.image}`),
    });
    let imageName: string;
    let imageDigest: string;
    try {
      const credentials = await pullCredentials(spec.image, spec.imagePullSecrets, sources);
      // Only the run's own Secrets: never the agent's auth files, env or home (a confused deputy).
      const context = { ...(credentials ? { credentials } : {}), ambientCredentials: false };
      let source = spec.image;
      if (this.#o.policy) {
        const verdict = await judgeRunImage(this.#o.policy, spec.image, context, signal);
        if (!verdict.allowed) return this.#denied(run, verdict.reason);
        log.info({ image: verdict.pull, reason: verdict.reason }, 'image accepted by the node policy');
        source = verdict.pull;
      }
      // A tag is looked up again for each attempt. A digest is immutable, but a stored image is
      // reused only by runs that showed they may read it (KEP-2535): pulled anonymously, or with
      // these very credentials; any other run pulls again with its own, which the registry judges.
      const identity = credentialsIdentity(parseReference(source.replace(/^docker:\/\//, '')).registry, credentials);
      const at = source.indexOf('@sha256:');
      const wanted = at >= 0 ? source.slice(at + 1) : undefined;
      const pullPolicy = wanted && this.#o.pullRecords.mayReuse(wanted, identity) ? 'missing' : 'always';
      const image = await this.#o.store.pull(source, { policy: pullPolicy, context, signal, ...(idMappings ? { snapshots: { idMap: idMappings } } : {}) });
      if (pullPolicy === 'always') {
        if (wanted) await this.#o.pullRecords.record(wanted, identity);
        await this.#o.pullRecords.record(image.digest, identity);
      }
      log.info({ image: source, digest: image.digest, reused: pullPolicy === 'missing', anonymous: identity === undefined }, 'image ready');
      imageName = image.name;
      imageDigest = image.digest;
    } catch (err) {
      if (signal.aborted) throw err;
      const message = `pulling ${spec.image}: ${errorMessage(err)}`;
      const tries = (this.#pullFailures.get(run.metadata.uid!) ?? 0) + 1;
      log.warn({ err: errorMessage(err), tries }, 'pull failed');
      if (tries < PULL_TRIES) {
        // A registry blip should not fail the run: back off and pull again (a kubelet's ImagePullBackOff).
        this.#pullFailures.set(run.metadata.uid!, tries);
        const delay = this.#restartDelay(tries - 1);
        await this.#patchStatus(run, {
          phase: 'Pending',
          reason: 'ErrImagePull',
          message: `${message}; trying again in ${Math.round(delay / 1000)}s (${tries} of ${PULL_TRIES} tries)`,
          conditions: markReconciling(run.status?.conditions, gen, 'ErrImagePull', message),
        });
        return this.#waitBeforeRetry(run, delay);
      }
      this.#pullFailures.delete(run.metadata.uid!);
      return this.#finishAttempt(run, { reason: 'ErrImagePull', message: `${message} (${tries} tries)`, finishedAt: new Date().toISOString() });
    }
    this.#pullFailures.delete(run.metadata.uid!);
    const options: RunOptions = {
      id,
      name: attemptContainerName(ns, run.metadata.name!, attempt),
      image: imageName,
      pull: 'never',
      ...(spec.command ? { entrypoint: spec.command } : {}),
      ...(spec.args ? { args: spec.args } : {}),
      env,
      workdir: spec.workingDir,
      user: spec.user,
      network: spec.network ?? 'none',
      binds: mounts.binds,
      tmpfsMounts: mounts.tmpfs,
      memory: spec.resources?.memory !== undefined ? quantityBytes(spec.resources.memory) : undefined,
      cpus: cpus(spec.resources?.cpu),
      pidsLimit: spec.resources?.pids,
      timeoutSeconds: spec.timeout ? parseDuration(spec.timeout) / 1000 : undefined,
      stopGraceSeconds: this.#o.stopGraceSeconds ?? 10,
      runtime: spec.runtime ?? this.#o.runtime ?? 'runc',
      hostname: run.metadata.name!.slice(0, 63),
      logMaxBytes: this.#o.logMaxBytes ?? 10 * 1024 * 1024,
      ...(idMappings ? { idMappings } : {}),
    };
    // Taken before the launch: a quick command may have finished by the time it returns.
    const startedAt = rfc3339Seconds();
    const started = await (this.#o.launch ?? launchDetached)(this.#o.store, options);
    if (started.error) {
      // The command could not start (125/126/127): a failed attempt like any other.
      return this.#finishAttempt(run, {
        exitCode: started.error.exitCode,
        reason: 'Error',
        message: started.error.message,
        finishedAt: new Date().toISOString(),
      });
    }
    log.info({ id, image: imageName, digest: imageDigest }, 'container started');
    await this.#patchStatus(run, {
      phase: 'Running',
      reason: 'Running',
      message: `attempt ${attempt + 1} running on ${this.#o.nodeName}`,
      imageDigest,
      startedAt,
      finishedAt: null,
      exitCode: null,
      signal: null,
      logTail: null,
      conditions: markReady(run.status?.conditions, gen, true, 'Running', `running on ${this.#o.nodeName}`),
    });
    await this.#event(run, 'Normal', 'Started', `started attempt ${attempt + 1} of ${spec.image} (${imageDigest}) on ${this.#o.nodeName}`);
    return { requeueAfterMs: this.#o.pollMs ?? 1000 };
  }

  /**
   * The node policy refused the image: nothing was pulled or run. Final whatever the restartPolicy,
   * as the same image would be refused again (a new run, or a changed policy, is the way on).
   */
  async #denied(run: ContainerRun, reason: string): Promise<ReconcileResult> {
    const gen = run.metadata.generation ?? 0;
    const message = `the node's image policy refused ${run.spec.image}: ${reason}`;
    this.#pullFailures.delete(run.metadata.uid!);
    this.#o.log.warn({ run: `${run.metadata.namespace}/${run.metadata.name}`, reason }, 'image refused by the node policy');
    await this.#patchStatus(run, {
      phase: 'Failed',
      reason: 'PolicyDenied',
      message,
      nodeName: this.#o.nodeName,
      observedGeneration: gen,
      finishedAt: rfc3339Seconds(),
      conditions: markStalled(run.status?.conditions, gen, 'PolicyDenied', message),
    });
    await this.#event(run, 'Warning', 'PolicyDenied', message);
    await this.#runEnded(run);
    return {};
  }

  /**
   * The run asks for what its namespace's level does not grant (the admission policy was not
   * installed, or the node is tainted, which admission cannot see): nothing is pulled or run.
   */
  async #notGranted(run: ContainerRun, violations: string[]): Promise<ReconcileResult> {
    const gen = run.metadata.generation ?? 0;
    const message = `refused by the node agent: ${violations.join('; ')}`;
    this.#o.log.warn({ run: `${run.metadata.namespace}/${run.metadata.name}`, violations }, 'run asks for privileges its namespace was not granted');
    await this.#patchStatus(run, {
      phase: 'Failed',
      reason: 'PrivilegeNotGranted',
      message,
      nodeName: this.#o.nodeName,
      observedGeneration: gen,
      finishedAt: rfc3339Seconds(),
      conditions: markStalled(run.status?.conditions, gen, 'PrivilegeNotGranted', message),
    });
    await this.#event(run, 'Warning', 'PrivilegeNotGranted', message);
    return {};
  }

  /** The run's namespace level (its Namespace label) against the spec, and the pinned node's taints. */
  async #privilegeViolations(run: ContainerRun): Promise<string[]> {
    const ns = await this.#client.get<{ metadata: { labels?: Record<string, string> } }>(`/api/v1/namespaces/${encodeURIComponent(run.metadata.namespace!)}`);
    const level = privilegeLevel(ns.metadata.labels);
    if (level === 'privileged') return [];
    let taints: NodeTaint[] | undefined;
    if (run.spec.nodeName) {
      try {
        const node = await this.#client.get<{ spec?: { taints?: NodeTaint[] } }>(`/api/v1/nodes/${encodeURIComponent(run.spec.nodeName)}`);
        taints = node.spec?.taints ?? [];
      } catch (err) {
        if (!isNotFound(err)) throw err;
        taints = []; // no Node object (a node the cluster does not list): nothing says it is tainted
      }
    }
    return privilegeViolations(run.spec, level, taints);
  }

  #waitBeforeRetry(run: ContainerRun, ms: number): ReconcileResult {
    this.#notBefore.set(run.metadata.uid!, Date.now() + ms);
    return { requeueAfterMs: ms };
  }

  /** The spec can never be carried out (admission should have refused it): final, never retried. */
  async #invalidSpec(run: ContainerRun, message: string): Promise<ReconcileResult> {
    const gen = run.metadata.generation ?? 0;
    await this.#patchStatus(run, {
      phase: 'Failed',
      reason: 'InvalidSpec',
      message,
      nodeName: this.#o.nodeName,
      observedGeneration: gen,
      finishedAt: rfc3339Seconds(),
      conditions: markStalled(run.status?.conditions, gen, 'InvalidSpec', message),
    });
    await this.#event(run, 'Warning', 'InvalidSpec', message);
    await releaseVolumes(runVolumesDir(this.#o.store.root, run.metadata.uid!));
    return {};
  }

  /** Running: keep status Running (again, after a NodeLost) and the log tail fresh. */
  async #observeRunning(run: ContainerRun, rec: ContainerRecord): Promise<ReconcileResult> {
    const s = run.status ?? {};
    const gen = run.metadata.generation ?? 0;
    const tail = await readLogTail(rec.logPath);
    const patch: Record<string, unknown> = {};
    if (s.phase !== 'Running' || s.nodeName !== this.#o.nodeName) {
      Object.assign(patch, {
        phase: 'Running',
        reason: 'Running',
        nodeName: this.#o.nodeName,
        message: `running on ${this.#o.nodeName}`,
        imageDigest: rec.imageDigest,
        startedAt: s.startedAt ?? rec.createdAt.replace(/\.\d{3}Z$/, 'Z'),
        conditions: markReady(s.conditions, gen, true, 'Running', `running on ${this.#o.nodeName}`),
      });
    }
    // The tail of a chatty run changes on every poll: written when it changed, at most every logTailMs.
    const last = this.#tailWritten.get(run.metadata.uid!) ?? 0;
    if (tail !== (s.logTail ?? '') && (Date.now() - last >= (this.#o.logTailMs ?? 5_000) || Object.keys(patch).length > 0)) {
      patch.logTail = tail;
      this.#tailWritten.set(run.metadata.uid!, Date.now());
    }
    if (Object.keys(patch).length > 0) await this.#patchStatus(run, patch);
    await this.#checkDiskLimits(run, rec);
    return { requeueAfterMs: this.#o.pollMs ?? 1000 };
  }

  /**
   * Disk emptyDirs over their sizeLimit (a tmpfs caps the Memory ones): the container is stopped
   * and the run fails with reason Evicted, as the kubelet's local storage eviction does. Measured
   * at most every diskCheckMs.
   */
  async #checkDiskLimits(run: ContainerRun, rec: ContainerRecord): Promise<void> {
    if (!(run.spec.volumes ?? []).some((v) => v.emptyDir && v.emptyDir.medium !== 'Memory' && v.emptyDir.sizeLimit !== undefined)) return;
    const uid = run.metadata.uid!;
    if (Date.now() - (this.#diskChecked.get(uid) ?? 0) < (this.#o.diskCheckMs ?? 10_000)) return;
    this.#diskChecked.set(uid, Date.now());
    const dir = runVolumesDir(this.#o.store.root, uid);
    const over = await emptyDirOverLimit(run.spec, dir);
    if (!over) return;
    this.#o.log.warn({ run: `${run.metadata.namespace}/${run.metadata.name}`, over }, 'evicting: an emptyDir is over its sizeLimit');
    await writeFile(evictionNote(dir), over);
    await signalContainer(rec, 'SIGKILL', { all: true });
  }

  async #outcome(rec: ContainerRecord, run?: ContainerRun): Promise<AttemptOutcome> {
    const evicted = run ? await readFile(evictionNote(runVolumesDir(this.#o.store.root, run.metadata.uid!)), 'utf8').catch(() => undefined) : undefined;
    if (evicted !== undefined) {
      return {
        exitCode: rec.exitCode,
        reason: 'Evicted',
        message: `the container was stopped: ${evicted}`,
        startedAt: rec.createdAt.replace(/\.\d{3}Z$/, 'Z'),
        finishedAt: rfc3339Seconds(rec.finishedAt ? new Date(rec.finishedAt) : undefined),
        logTail: await readLogTail(rec.logPath),
      };
    }
    const reason = rec.reason === 'Completed' || rec.reason === 'OOMKilled' || rec.reason === 'DeadlineExceeded' ? rec.reason : 'Error';
    const code = rec.exitCode;
    const message =
      reason === 'Completed' ? 'the container exited with code 0'
      : reason === 'DeadlineExceeded' ? 'the container ran longer than spec.timeout and was stopped'
      : reason === 'OOMKilled' ? 'the container was killed for exceeding its memory limit'
      : `the container exited with code ${code ?? 'unknown'}`;
    return {
      exitCode: code,
      reason,
      message,
      startedAt: rec.createdAt.replace(/\.\d{3}Z$/, 'Z'),
      finishedAt: rfc3339Seconds(rec.finishedAt ? new Date(rec.finishedAt) : undefined),
      logTail: await readLogTail(rec.logPath),
    };
  }

  /** Records an attempt's end: Succeeded, a restart (OnFailure, within backoffLimit), or Failed. */
  async #finishAttempt(run: ContainerRun, o: AttemptOutcome): Promise<ReconcileResult> {
    const spec = run.spec;
    const s = run.status ?? {};
    const gen = run.metadata.generation ?? 0;
    const restarts = s.restartCount ?? 0;
    const common: Record<string, unknown> = {
      nodeName: this.#o.nodeName,
      observedGeneration: gen,
      exitCode: o.exitCode ?? null,
      signal: (o.exitCode !== undefined && o.reason !== 'Completed' ? signalOfExitCode(o.exitCode) : undefined) ?? null,
      finishedAt: o.finishedAt.replace(/\.\d{3}Z$/, 'Z'),
      ...(o.startedAt ? { startedAt: s.startedAt ?? o.startedAt } : {}),
      ...(o.logTail !== undefined ? { logTail: o.logTail } : {}),
    };
    if (o.reason === 'Completed' && o.exitCode === 0) {
      await this.#patchStatus(run, { ...common, phase: 'Succeeded', reason: 'Completed', message: o.message, conditions: markReady(s.conditions, gen, true, 'Completed', o.message) });
      await this.#event(run, 'Normal', 'Completed', o.message);
      await this.#runEnded(run);
      return {};
    }
    const limit = spec.backoffLimit ?? DEFAULT_BACKOFF_LIMIT;
    // A deadline is the run's, not the attempt's: it is not retried (as a Job's activeDeadlineSeconds).
    // Nor is an eviction: the same run would fill its volume again.
    if (spec.restartPolicy === 'OnFailure' && o.reason !== 'DeadlineExceeded' && o.reason !== 'Evicted' && restarts < limit) {
      const delay = this.#restartDelay(restarts);
      const message = `attempt ${restarts + 1} failed (${o.reason}: ${o.message}); restarting in ${Math.round(delay / 1000)}s (${restarts + 1} of ${limit} restarts)`;
      await this.#patchStatus(run, {
        ...common,
        phase: 'Pending',
        reason: o.reason,
        message,
        restartCount: restarts + 1,
        conditions: markReconciling(s.conditions, gen, 'BackOff', message),
      });
      await this.#event(run, 'Warning', 'BackOff', message);
      return { requeueAfterMs: delay };
    }
    const exhausted = spec.restartPolicy === 'OnFailure' && o.reason !== 'DeadlineExceeded' && o.reason !== 'Evicted';
    const reason = exhausted ? 'BackoffLimitExceeded' : o.reason;
    const message = exhausted ? `failed after ${restarts + 1} attempts; last: ${o.reason}: ${o.message}` : o.message;
    await this.#patchStatus(run, { ...common, phase: 'Failed', reason, message, conditions: markStalled(s.conditions, gen, reason, message) });
    await this.#event(run, 'Warning', reason, message);
    await this.#runEnded(run);
    return {};
  }

  /** No attempt will follow: the run's volumes (Secret and ConfigMap tmpfs included) go now, its log and container stay until it is deleted. */
  async #runEnded(run: ContainerRun): Promise<void> {
    this.#tailWritten.delete(run.metadata.uid!);
    this.#diskChecked.delete(run.metadata.uid!);
    this.#pullFailures.delete(run.metadata.uid!);
    this.#configWaits.delete(run.metadata.uid!);
    this.#notBefore.delete(run.metadata.uid!);
    await releaseVolumes(runVolumesDir(this.#o.store.root, run.metadata.uid!));
  }

  /**
   * A run bound to another node (failed over while this agent was away) or no longer bound: kill
   * and remove whatever this node still has of it, so one run never runs on two nodes for long.
   */
  async #releaseMoved(run: ContainerRun): Promise<ReconcileResult> {
    if (!run.metadata.uid) return {};
    let mine = false;
    for (let n = 0; n <= (run.status?.restartCount ?? 0); n++) {
      if ((await containerState(this.#o.store, attemptContainerId(run.metadata.uid, n))).state !== 'absent') mine = true;
    }
    if (!mine) {
      const idMap = this.#o.userns.lookup(run.metadata.uid);
      if (idMap) {
        await this.#o.store.removeSnapshotsFor(idMap);
        await this.#o.userns.release(run.metadata.uid);
      }
      return {};
    }
    this.#o.log.warn({ run: `${run.metadata.namespace}/${run.metadata.name}`, boundTo: boundNode(run) ?? null }, 'run moved away from this node: removing its containers here');
    await this.#removeAttempts(run);
    return {};
  }

  /** Deleted: kill every attempt still running, remove the containers and volumes, release the run. */
  async #finalize(run: ContainerRun): Promise<ReconcileResult> {
    if (!(run.metadata.finalizers ?? []).includes(CONTAINER_RUN_FINALIZER)) return {};
    await this.#removeAttempts(run);
    const finalizers = (run.metadata.finalizers ?? []).filter((f) => f !== CONTAINER_RUN_FINALIZER);
    try {
      await this.#client.patch(this.#path(run), { metadata: { finalizers, resourceVersion: run.metadata.resourceVersion } });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    return {};
  }

  /** Stops (SIGTERM, grace, SIGKILL) and removes every attempt's container, and the run's volumes. */
  async #removeAttempts(run: ContainerRun): Promise<void> {
    const uid = run.metadata.uid!;
    for (const m of [this.#pullFailures, this.#configWaits, this.#notBefore, this.#tailWritten, this.#diskChecked]) m.delete(uid);
    for (let n = 0; n <= (run.status?.restartCount ?? 0); n++) {
      const id = attemptContainerId(uid, n);
      if (await removeContainer(this.#o.store, id, { force: true, graceMs: this.#graceMs })) this.#o.log.info({ run: `${run.metadata.namespace}/${run.metadata.name}`, id }, 'container stopped');
    }
    await releaseVolumes(runVolumesDir(this.#o.store.root, uid));
    // Nothing of the run is left on the node: its ids (and the snapshots made for them) go back.
    const idMap = this.#o.userns.lookup(uid);
    if (idMap) {
      await this.#o.store.removeSnapshotsFor(idMap);
      await this.#o.userns.release(uid);
    }
  }

  async #patchStatus(run: ContainerRun, status: Partial<Record<keyof ContainerRunStatus, unknown>>): Promise<void> {
    // A write that changes nothing still costs the API server a resourceVersion and every watcher an event.
    const current = (run.status ?? {}) as Record<string, unknown>;
    const same = (a: unknown, b: unknown): boolean => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
    if (Object.entries(status).every(([k, v]) => same(current[k], v))) return;
    try {
      const updated = await this.#client.patch<ContainerRun>(this.#path(run, 'status'), { status });
      // Later steps of the same reconcile start from what was written.
      run.status = updated.status;
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
  }

  async #event(run: ContainerRun, type: 'Normal' | 'Warning', reason: string, note: string): Promise<void> {
    await this.#o.events.record({ ...run, apiVersion: API_VERSION, kind: 'ContainerRun' }, type, reason, note, 'Run');
  }
}
