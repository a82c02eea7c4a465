/**
 * The node agent's reconciler: for each ContainerRun bound to this node (spec.nodeName or the
 * controller's status.nodeName) it pulls, starts, watches and finishes the container of the
 * current attempt, and owns the run's status from binding on. Its steps run on the one reconcile
 * skeleton (k8s/runtime/reconcile.ts), as the controllers' do: a run bound elsewhere is released
 * (precheck); deletion removes the containers before the finalizer goes; then, in order: a
 * terminal run → stop what still runs; the attempt's state (running → observe, exited or lost →
 * finish); the restart and pull back-offs; earlier attempts stopped; privileges; the image
 * reference; a user namespace; ConfigMaps and Secrets; the pull; the launch. The steps mutate one
 * status, patched once at the end (and once before the pull, to say Pulling), guarded by
 * resourceVersion as the controller writes the same status; an engine error that can never
 * succeed fails the run through the skeleton's one error mapping (Stalled, its code as reason).
 *
 * The container lifecycle is the runtime's (runtime/lifecycle/): the agent asks for a container's
 * state, starts it detached, stops and removes it; it knows no state file, signal or mount.
 * Attempt n of a run is the container with id sha256(uid, n) in the node's store: the store's
 * records, not this process's memory, say whether it is running or how it ended, so a restarted
 * agent reattaches to running containers and never starts a finished attempt again.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { API_VERSION } from '../k8s/api/common.js';
import {
  boundNode,
  CONTAINER_RUN_FINALIZER,
  CONTAINER_RUN_RESOURCE,
  type ContainerRun,
  type ContainerRunReason,
  type ContainerRunStatus,
} from '../k8s/api/containerrun.js';
import { isNotFound, type KubeClient } from '../k8s/runtime/client.js';
import type { ReconcileRequest, ReconcileResult, Reconciler } from '../k8s/runtime/controller.js';
import type { EventRecorder } from '../k8s/runtime/events.js';
import { objectKey } from '../k8s/runtime/informer.js';
import { ReconcileLoop, type ReconcileScope } from '../k8s/runtime/reconcile.js';
import { parseReference } from '../oci/reference.js';
import type { Policy } from '../policy/types.js';
import { ensureSearchable, type RunOptions } from '../runtime/container.js';
import type { ContainerRecord } from '../runtime/containers.js';
import {
  containerState,
  DEFAULT_STOP_GRACE_MS,
  type DetachedStart,
  removeContainer,
  signalContainer,
  startDetached,
  stopContainer,
} from '../runtime/lifecycle/index.js';
import { portMappings } from '../runtime/network/ports.js';
import type { RuntimeName } from '../runtime/oci-runtime.js';
import type { ImageStore } from '../runtime/store/index.js';
import { parseDuration } from '../util/duration.js';
import { errorMessage } from '../util/errors.js';
import { rfc3339Seconds } from '../util/time.js';
import { ConfigSourceError, ConfigSources } from './config-sources.js';
import { resolveEnv } from './env.js';
import { readLogTail } from './log-tail.js';
import { attemptContainerId, attemptContainerName } from './naming.js';
import { privilegeLevel, privilegeViolations, type NodeTaint } from './privileges.js';
import { pullCredentials } from './pull-credentials.js';
import { credentialsIdentity, type PullRecords } from './pull-records.js';
import { judgeRunImage } from './run-policy.js';
import { restartDelayMs, signalOfExitCode } from './status-text.js';
import { IdsExhaustedError, type UserNamespaceAllocator } from './userns.js';
import { emptyDirOverLimit, evictionNote, prepareVolumes, quantityBytes, releaseVolumes, runVolumesDir } from './volumes.js';

/**
 * How the agent starts a container so that it outlives the agent; the default is the runtime's
 * detached monitor (runtime/lifecycle/monitor.ts, our conmon), which streams its output to the
 * k8s-file log and records its exit, so a restarted agent finds running containers again.
 */
export type LaunchContainer = (store: ImageStore, options: RunOptions) => Promise<DetachedStart>;

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

const TERMINAL = new Set(['Succeeded', 'Failed']);
const DEFAULT_BACKOFF_LIMIT = 3;
/** Pulls tried per attempt before it fails with ErrImagePull. */
const PULL_TRIES = 3;

interface AttemptOutcome {
  exitCode?: number;
  reason: AttemptEndReason;
  message: string;
  startedAt?: string;
  finishedAt: string;
  logTail?: string;
  /** The digest the attempt's container ran (from its record), when it ran at all. */
  imageDigest?: string;
}

/** CPU quantity (`500m`, `2`) as a fraction of CPUs. */
function cpus(q: string | number | undefined): number | undefined {
  if (q === undefined) return undefined;
  if (typeof q === 'number') return q;
  return q.endsWith('m') ? Number(q.slice(0, -1)) / 1000 : Number(q);
}

/** The run's reasons, and the agent's own Events (an attempt started, a restart backed off). */
type Reason = ContainerRunReason | 'Started' | 'BackOff';
type Scope = ReconcileScope<ContainerRun, ContainerRunStatus, Reason, StartContext>;
/** How an attempt ended. */
type AttemptEndReason = Extract<ContainerRunReason, 'Completed' | 'Error' | 'OOMKilled' | 'DeadlineExceeded' | 'Evicted' | 'ErrImagePull'>;

/** Status keys the agent writes (all of them but the controller's alone: none). */
const STATUS_KEYS = [
  'phase',
  'reason',
  'message',
  'nodeName',
  'observedGeneration',
  'conditions',
  'lastHandledReconcileAt',
  'imageDigest',
  'exitCode',
  'signal',
  'startedAt',
  'finishedAt',
  'restartCount',
  'logTail',
] as const;

/** A reconcile's context (`scope.ctx`): what the start steps of one reconcile hand each other. */
interface StartContext {
  readonly attempt: number;
  readonly id: string;
  readonly log: Logger;
  /** ConfigMaps/Secrets read once per reconcile (env, volumes, pull secrets). */
  readonly sources: ConfigSources;
  idMappings?: RunOptions['idMappings'];
  env?: string[];
  mounts?: Awaited<ReturnType<typeof prepareVolumes>>;
  image?: { name: string; digest: string };
}

const trimMillis = (t: string) => t.replace(/\.\d{3}Z$/, 'Z');

export class ContainerRunAgentReconciler implements Reconciler<ContainerRun> {
  readonly name = 'containerrun-agent';
  readonly resource = CONTAINER_RUN_RESOURCE;
  readonly #client: KubeClient;
  readonly #o: AgentReconcilerOptions;
  readonly #loop: ReconcileLoop<ContainerRun, ContainerRunStatus, Reason, StartContext>;
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
    this.#loop = new ReconcileLoop(client, o.events, {
      kind: 'ContainerRun',
      resource: CONTAINER_RUN_RESOURCE,
      finalizer: CONTAINER_RUN_FINALIZER,
      statusKeys: STATUS_KEYS,
      // The controller writes status too: read the run fresh, and a write from a stale read conflicts.
      readFromCache: false,
      guardStatus: true,
      // The controller adds the finalizer; the agent removes it once the containers are gone.
      addFinalizer: false,
      // The steps record their own Events (Started, BackOff, Completed, ...).
      transitionEvents: false,
      eventAction: 'Run',
      precheck: async (run) => (boundNode(run) === this.#o.nodeName ? undefined : this.#releaseMoved(run)),
      finalize: async (run) => {
        await this.#removeAttempts(run);
        return undefined;
      },
      newContext: (s) => this.#startContext(s.obj, s.status),
      steps: [
        (s) => this.#terminal(s),
        (s) => this.#currentAttempt(s),
        (s) => this.#waitTurn(s),
        (s) => this.#stopEarlierAttempts(s),
        (s) => this.#privileges(s),
        (s) => this.#validImage(s),
        (s) => this.#userNamespace(s),
        (s) => this.#configSources(s),
        (s) => this.#pull(s),
        (s) => this.#launch(s),
      ],
      // An error no retry can mend (an engine error that is not retryable: an image reference that
      // is not one, a runtime this node does not have) fails the run, with the error's code as reason.
      onStalled: (status, reason, message) => {
        status.phase = 'Failed';
        status.reason = reason;
        status.message = message;
        status.nodeName = this.#o.nodeName;
        status.finishedAt = rfc3339Seconds();
      },
      afterStalled: async (run, _status, reason, message) => {
        this.#o.log.warn({ run: objectKey(run), reason, err: message }, 'the run can never start: failed');
        await this.#o.events.record({ ...run, apiVersion: API_VERSION, kind: 'ContainerRun' }, 'Warning', reason, message, 'Run');
        await this.#runEnded(run);
      },
    });
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

  reconcile(req: ReconcileRequest<ContainerRun>, signal: AbortSignal): Promise<ReconcileResult> {
    return this.#loop.run(req, signal);
  }

  get #graceMs(): number {
    return this.#o.stopGraceSeconds === undefined ? DEFAULT_STOP_GRACE_MS : this.#o.stopGraceSeconds * 1000;
  }

  #restartDelay(n: number): number {
    const b = this.#o.restartBackoff;
    return b ? restartDelayMs(n, b.baseMs, b.maxMs) : restartDelayMs(n);
  }

  /** The attempt this reconcile is about: the one after the restarts so far. */
  #startContext(run: ContainerRun, status: ContainerRunStatus): StartContext {
    const attempt = status.restartCount ?? 0;
    return {
      attempt,
      id: attemptContainerId(run.metadata.uid!, attempt),
      log: this.#o.log.child({ run: objectKey(run), attempt }),
      sources: new ConfigSources(this.#client, run.metadata.namespace!),
    };
  }

  /**
   * A terminal run whose container still runs here (the controller marked it Failed/NodeLost while
   * this agent was away): the API says it ended, so it must not go on unobserved. Stopped and removed.
   */
  async #terminal(s: Scope): Promise<ReconcileResult | undefined> {
    if (!s.before.phase || !TERMINAL.has(s.before.phase)) return undefined;
    const run = s.obj;
    for (let n = 0; n <= (s.before.restartCount ?? 0); n++) {
      const id = attemptContainerId(run.metadata.uid!, n);
      const st = await containerState(this.#o.store, id);
      if (st.state !== 'running' && st.state !== 'lost') continue;
      this.#o.log.warn(
        { run: objectKey(run), attempt: n, phase: s.before.phase },
        'the run has ended but its container still runs here: stopping and removing it',
      );
      await removeContainer(this.#o.store, id, { force: true, graceMs: this.#graceMs });
    }
    return {};
  }

  /** The current attempt's container: running → observed; exited or lost → the attempt is finished. */
  async #currentAttempt(s: Scope): Promise<ReconcileResult | undefined> {
    const { id } = s.ctx;
    const st = await containerState(this.#o.store, id);
    if (st.state === 'running') return this.#observeRunning(s, st.record);
    if (st.state === 'exited') return this.#finishAttempt(s, await this.#outcome(st.record, s.obj));
    if (st.state === 'lost') {
      // Nobody watches that container any more: make sure it does not run on unobserved.
      await stopContainer(this.#o.store, id, { graceMs: 0 });
      const outcome = await this.#outcome(st.record);
      return this.#finishAttempt(s, {
        ...outcome,
        exitCode: undefined,
        reason: 'Error',
        message: 'the container was lost: its monitor process is gone (was the node restarted?)',
      });
    }
    return undefined;
  }

  /**
   * Not started yet: after a failed attempt, the restart back-off first. A pull back-off or a wait
   * for a missing ConfigMap/Secret holds whatever event comes in meanwhile (the controller's
   * finalizer, a label): only its own timer ends it, as the kubelet's image back-off.
   */
  async #waitTurn(s: Scope): Promise<ReconcileResult | undefined> {
    const { attempt } = s.ctx;
    if (attempt > 0 && s.status.finishedAt) {
      const due = Date.parse(s.status.finishedAt) + this.#restartDelay(attempt - 1);
      if (due > Date.now()) return { requeueAfterMs: due - Date.now() };
    }
    const uid = s.obj.metadata.uid!;
    const notBefore = this.#notBefore.get(uid);
    if (notBefore !== undefined && notBefore > Date.now()) return { requeueAfterMs: notBefore - Date.now() };
    this.#notBefore.delete(uid);
    return undefined;
  }

  /**
   * An earlier attempt can still run here when the run was failed over while this agent was away
   * and then bound to this node again: stop it before the next attempt starts (its log is kept).
   */
  async #stopEarlierAttempts(s: Scope): Promise<undefined> {
    const { attempt } = s.ctx;
    for (let n = 0; n < attempt; n++) {
      const id = attemptContainerId(s.obj.metadata.uid!, n);
      const st = await containerState(this.#o.store, id);
      if (st.state !== 'running' && st.state !== 'lost') continue;
      this.#o.log.warn({ run: objectKey(s.obj), attempt: n }, 'an earlier attempt still runs: stopping it');
      await stopContainer(this.#o.store, id, { graceMs: 0 });
    }
    return undefined;
  }

  /**
   * The run asks for what its namespace's level does not grant (the admission policy was not
   * installed, or the node is tainted, which admission cannot see): nothing is pulled or run.
   */
  async #privileges(s: Scope): Promise<ReconcileResult | undefined> {
    const violations = await this.#privilegeViolations(s.obj);
    if (violations.length === 0) return undefined;
    const message = `refused by the node agent: ${violations.join('; ')}`;
    this.#o.log.warn({ run: objectKey(s.obj), violations }, 'run asks for privileges its namespace was not granted');
    this.#fail(s, 'PrivilegeNotGranted', message);
    await s.event('Warning', 'PrivilegeNotGranted', message);
    return {};
  }

  /** A reference no registry can have is final (InvalidInputError, not retryable: the skeleton stalls the run), not a pull to back off from. */
  async #validImage(s: Scope): Promise<undefined> {
    parseReference(s.obj.spec.image.replace(/^docker:\/\//, ''));
    return undefined;
  }

  /** The run's own block of ids, unless it asks for the host's (hostUsers: true). */
  async #userNamespace(s: Scope): Promise<ReconcileResult | undefined> {
    if (s.obj.spec.hostUsers === true) return undefined;
    const c = s.ctx;
    try {
      c.idMappings = await this.#o.userns.allocate(s.obj.metadata.uid!);
    } catch (err) {
      if (!(err instanceof IdsExhaustedError)) throw err;
      s.status.phase = 'Pending';
      s.status.reason = 'UserNamespaceUnavailable';
      s.status.message = err.message;
      s.reconciling('UserNamespaceUnavailable', err.message);
      return { requeueAfterMs: 30_000 };
    }
    return undefined;
  }

  /**
   * The run's ConfigMaps and Secrets first: a run waiting for one stays Pending (no pull) until it
   * appears, as a kubelet's CreateContainerConfigError.
   */
  async #configSources(s: Scope): Promise<ReconcileResult | undefined> {
    const c = s.ctx;
    const run = s.obj;
    const uid = run.metadata.uid!;
    try {
      c.env = await resolveEnv(run.spec, c.sources);
      const volumesDir = runVolumesDir(this.#o.store.root, uid);
      c.mounts = await prepareVolumes(run.spec, volumesDir, c.sources, { idMap: c.idMappings, user: run.spec.user });
      // The runtime binds them from inside the run's user namespace, as an unprivileged node id.
      if (c.idMappings && c.mounts.binds.length > 0)
        await ensureSearchable([this.#o.store.root, join(this.#o.store.root, 'agent'), dirname(volumesDir), volumesDir]);
    } catch (err) {
      if (!(err instanceof ConfigSourceError)) throw err;
      if (err.reason === 'InvalidSpec') {
        // The spec can never be carried out (admission should have refused it): final, never retried.
        this.#fail(s, 'InvalidSpec', err.message);
        await s.event('Warning', 'InvalidSpec', err.message);
        await releaseVolumes(runVolumesDir(this.#o.store.root, uid));
        return {};
      }
      const waits = (this.#configWaits.get(uid) ?? 0) + 1;
      this.#configWaits.set(uid, waits);
      this.#pending(s, err.reason, err.message);
      s.reconciling(err.reason, err.message);
      await s.event('Warning', err.reason, err.message);
      // 10 s, 20 s, 40 s, ... up to 5 min between looks.
      return this.#waitBeforeRetry(run, Math.min(300_000, 10_000 * 2 ** Math.min(waits - 1, 5)));
    }
    this.#configWaits.delete(uid);
    return undefined;
  }

  /** Pulls the image with the run's own credentials only, as the node policy allows; a failed pull backs off. */
  async #pull(s: Scope): Promise<ReconcileResult | undefined> {
    const c = s.ctx;
    const { obj: run, signal } = s;
    const spec = run.spec;
    const uid = run.metadata.uid!;
    s.status.phase = 'Pulling';
    s.status.nodeName = this.#o.nodeName;
    s.status.reason = 'Pulling';
    s.status.message = `pulling ${spec.image}`;
    s.status.observedGeneration = s.generation;
    s.reconciling('Pulling', `pulling ${spec.image}`);
    await s.progress();
    try {
      const credentials = await pullCredentials(spec.image, spec.imagePullSecrets, c.sources);
      // Only the run's own Secrets: never the agent's auth files, env or home (a confused deputy).
      const context = { ...(credentials ? { credentials } : {}), ambientCredentials: false };
      let source = spec.image;
      if (this.#o.policy) {
        const verdict = await judgeRunImage(this.#o.policy, spec.image, context, signal);
        if (!verdict.allowed) return this.#denied(s, verdict.reason);
        c.log.info({ image: verdict.pull, reason: verdict.reason }, 'image accepted by the node policy');
        source = verdict.pull;
      }
      // A tag is looked up again for each attempt. A digest is immutable, but a stored image is
      // reused only by runs that showed they may read it (KEP-2535): pulled anonymously, or with
      // these very credentials; any other run pulls again with its own, which the registry judges.
      const identity = credentialsIdentity(parseReference(source.replace(/^docker:\/\//, '')).registry, credentials);
      const at = source.indexOf('@sha256:');
      const wanted = at >= 0 ? source.slice(at + 1) : undefined;
      const pullPolicy = wanted && this.#o.pullRecords.mayReuse(wanted, identity) ? 'missing' : 'always';
      const image = await this.#o.store.pull(source, { policy: pullPolicy, context, signal, ...(c.idMappings ? { snapshots: { idMap: c.idMappings } } : {}) });
      if (pullPolicy === 'always') {
        if (wanted) await this.#o.pullRecords.record(wanted, identity);
        await this.#o.pullRecords.record(image.digest, identity);
      }
      c.log.info({ image: source, digest: image.digest, reused: pullPolicy === 'missing', anonymous: identity === undefined }, 'image ready');
      c.image = { name: image.name, digest: image.digest };
    } catch (err) {
      if (signal.aborted) throw err;
      const message = `pulling ${spec.image}: ${errorMessage(err)}`;
      const tries = (this.#pullFailures.get(uid) ?? 0) + 1;
      c.log.warn({ err: errorMessage(err), tries }, 'pull failed');
      if (tries < PULL_TRIES) {
        // A registry blip should not fail the run: back off and pull again (a kubelet's ImagePullBackOff).
        this.#pullFailures.set(uid, tries);
        const delay = this.#restartDelay(tries - 1);
        s.status.phase = 'Pending';
        s.status.reason = 'ErrImagePull';
        s.status.message = `${message}; trying again in ${Math.round(delay / 1000)}s (${tries} of ${PULL_TRIES} tries)`;
        s.reconciling('ErrImagePull', message);
        return this.#waitBeforeRetry(run, delay);
      }
      this.#pullFailures.delete(uid);
      return this.#finishAttempt(s, { reason: 'ErrImagePull', message: `${message} (${tries} tries)`, finishedAt: new Date().toISOString() });
    }
    this.#pullFailures.delete(uid);
    return undefined;
  }

  /** Starts the attempt's container through the runtime's detached monitor. */
  async #launch(s: Scope): Promise<ReconcileResult> {
    const c = s.ctx;
    const run = s.obj;
    const spec = run.spec;
    const image = c.image!;
    const mounts = c.mounts!;
    const options: RunOptions = {
      id: c.id,
      name: attemptContainerName(run.metadata.namespace!, run.metadata.name!, c.attempt),
      image: image.name,
      pull: 'never',
      ...(spec.command ? { entrypoint: spec.command } : {}),
      ...(spec.args ? { args: spec.args } : {}),
      env: c.env,
      workdir: spec.workingDir,
      user: spec.user,
      network: spec.network ?? 'none',
      publish: portMappings(spec.ports),
      binds: mounts.binds,
      tmpfsMounts: mounts.tmpfs,
      memory: spec.resources?.memory !== undefined ? quantityBytes(spec.resources.memory) : undefined,
      cpus: cpus(spec.resources?.cpu),
      pidsLimit: spec.resources?.pids,
      timeoutSeconds: spec.timeout ? parseDuration(spec.timeout) / 1000 : undefined,
      stopGraceSeconds: this.#graceMs / 1000,
      runtime: spec.runtime ?? this.#o.runtime ?? 'runc',
      hostname: run.metadata.name!.slice(0, 63),
      logMaxBytes: this.#o.logMaxBytes ?? 10 * 1024 * 1024,
      ...(c.idMappings ? { idMappings: c.idMappings } : {}),
    };
    // Taken before the launch: a quick command may have finished by the time it returns.
    const startedAt = rfc3339Seconds();
    const started = await (this.#o.launch ?? startDetached)(this.#o.store, options);
    if (started.error) {
      // The command could not start (125/126/127): a failed attempt like any other.
      return this.#finishAttempt(s, {
        exitCode: started.error.exitCode,
        reason: 'Error',
        message: started.error.message,
        finishedAt: new Date().toISOString(),
      });
    }
    c.log.info({ id: c.id, image: image.name, digest: image.digest }, 'container started');
    const status = s.status;
    status.phase = 'Running';
    status.reason = 'Running';
    status.message = `attempt ${c.attempt + 1} running on ${this.#o.nodeName}`;
    status.imageDigest = image.digest;
    status.startedAt = startedAt;
    for (const k of ['finishedAt', 'exitCode', 'signal', 'logTail'] as const) delete status[k];
    s.ready(true, 'Running', `running on ${this.#o.nodeName}`);
    await s.event('Normal', 'Started', `started attempt ${c.attempt + 1} of ${spec.image} (${image.digest}) on ${this.#o.nodeName}`);
    return { requeueAfterMs: this.#o.pollMs ?? 1000 };
  }

  /** Pending on this node, for `reason`. */
  #pending(s: Scope, reason: Reason, message: string): void {
    s.status.phase = 'Pending';
    s.status.nodeName = this.#o.nodeName;
    s.status.reason = reason;
    s.status.message = message;
    s.status.observedGeneration = s.generation;
  }

  /** Failed for good on this node (Stalled=True): the same run would fail the same way. */
  #fail(s: Scope, reason: Reason, message: string): void {
    s.status.phase = 'Failed';
    s.status.reason = reason;
    s.status.message = message;
    s.status.nodeName = this.#o.nodeName;
    s.status.observedGeneration = s.generation;
    s.status.finishedAt = rfc3339Seconds();
    s.stalled(reason, message);
  }

  /**
   * The node policy refused the image: nothing was pulled or run. Final whatever the restartPolicy,
   * as the same image would be refused again (a new run, or a changed policy, is the way on).
   */
  async #denied(s: Scope, reason: string): Promise<ReconcileResult> {
    const message = `the node's image policy refused ${s.obj.spec.image}: ${reason}`;
    this.#pullFailures.delete(s.obj.metadata.uid!);
    this.#o.log.warn({ run: objectKey(s.obj), reason }, 'image refused by the node policy');
    this.#fail(s, 'PolicyDenied', message);
    await s.event('Warning', 'PolicyDenied', message);
    await this.#runEnded(s.obj);
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

  /** Running: keep status Running (again, after a NodeLost) and the log tail fresh. */
  async #observeRunning(s: Scope, rec: ContainerRecord): Promise<ReconcileResult> {
    const status = s.status;
    const uid = s.obj.metadata.uid!;
    const tail = await readLogTail(rec.logPath);
    const changing = status.phase !== 'Running' || status.nodeName !== this.#o.nodeName;
    if (changing) {
      status.phase = 'Running';
      status.reason = 'Running';
      status.nodeName = this.#o.nodeName;
      status.message = `running on ${this.#o.nodeName}`;
      status.imageDigest = rec.imageDigest;
      status.startedAt ??= trimMillis(rec.createdAt);
      s.ready(true, 'Running', `running on ${this.#o.nodeName}`);
    }
    // The tail of a chatty run changes on every poll: written when it changed, at most every logTailMs.
    const last = this.#tailWritten.get(uid) ?? 0;
    if (tail !== (status.logTail ?? '') && (Date.now() - last >= (this.#o.logTailMs ?? 5_000) || changing)) {
      status.logTail = tail;
      this.#tailWritten.set(uid, Date.now());
    }
    await this.#checkDiskLimits(s.obj, rec);
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
    this.#o.log.warn({ run: objectKey(run), over }, 'evicting: an emptyDir is over its sizeLimit');
    await writeFile(evictionNote(dir), over);
    await signalContainer(rec, 'SIGKILL', { all: true });
  }

  async #outcome(rec: ContainerRecord, run?: ContainerRun): Promise<AttemptOutcome> {
    const evicted = run ? await readFile(evictionNote(runVolumesDir(this.#o.store.root, run.metadata.uid!)), 'utf8').catch(() => undefined) : undefined;
    const times = {
      imageDigest: rec.imageDigest,
      startedAt: trimMillis(rec.createdAt),
      finishedAt: rfc3339Seconds(rec.finishedAt ? new Date(rec.finishedAt) : undefined),
      logTail: await readLogTail(rec.logPath),
    };
    if (evicted !== undefined) return { exitCode: rec.exitCode, reason: 'Evicted', message: `the container was stopped: ${evicted}`, ...times };
    const reason = rec.reason === 'Completed' || rec.reason === 'OOMKilled' || rec.reason === 'DeadlineExceeded' ? rec.reason : 'Error';
    const code = rec.exitCode;
    const message =
      reason === 'Completed'
        ? 'the container exited with code 0'
        : reason === 'DeadlineExceeded'
          ? 'the container ran longer than spec.timeout and was stopped'
          : reason === 'OOMKilled'
            ? 'the container was killed for exceeding its memory limit'
            : `the container exited with code ${code ?? 'unknown'}`;
    return { exitCode: code, reason, message, ...times };
  }

  /** Records an attempt's end: Succeeded, a restart (OnFailure, within backoffLimit), or Failed. */
  async #finishAttempt(s: Scope, o: AttemptOutcome): Promise<ReconcileResult> {
    const spec = s.obj.spec;
    const status = s.status;
    const restarts = status.restartCount ?? 0;
    status.nodeName = this.#o.nodeName;
    status.observedGeneration = s.generation;
    if (o.exitCode !== undefined) status.exitCode = o.exitCode;
    else delete status.exitCode;
    const signal = o.exitCode !== undefined && o.reason !== 'Completed' ? signalOfExitCode(o.exitCode) : undefined;
    if (signal !== undefined) status.signal = signal;
    else delete status.signal;
    status.finishedAt = trimMillis(o.finishedAt);
    if (o.startedAt) status.startedAt ??= o.startedAt;
    // From the container's record: the launch's own status write may have been lost (a conflict
    // with the controller's write, an agent restart) before the container ended.
    if (o.imageDigest) status.imageDigest = o.imageDigest;
    if (o.logTail !== undefined) status.logTail = o.logTail;
    if (o.reason === 'Completed' && o.exitCode === 0) {
      status.phase = 'Succeeded';
      status.reason = 'Completed';
      status.message = o.message;
      s.ready(true, 'Completed', o.message);
      await s.event('Normal', 'Completed', o.message);
      await this.#runEnded(s.obj);
      return {};
    }
    const limit = spec.backoffLimit ?? DEFAULT_BACKOFF_LIMIT;
    // A deadline is the run's, not the attempt's: it is not retried (as a Job's activeDeadlineSeconds).
    // Nor is an eviction: the same run would fill its volume again.
    const retriable = spec.restartPolicy === 'OnFailure' && o.reason !== 'DeadlineExceeded' && o.reason !== 'Evicted';
    if (retriable && restarts < limit) {
      const delay = this.#restartDelay(restarts);
      const message = `attempt ${restarts + 1} failed (${o.reason}: ${o.message}); restarting in ${Math.round(delay / 1000)}s (${restarts + 1} of ${limit} restarts)`;
      status.phase = 'Pending';
      status.reason = o.reason;
      status.message = message;
      status.restartCount = restarts + 1;
      s.reconciling('BackOff', message);
      await s.event('Warning', 'BackOff', message);
      return { requeueAfterMs: delay };
    }
    const reason: ContainerRunReason = retriable ? 'BackoffLimitExceeded' : o.reason;
    const message = retriable ? `failed after ${restarts + 1} attempts; last: ${o.reason}: ${o.message}` : o.message;
    status.phase = 'Failed';
    status.reason = reason;
    status.message = message;
    s.stalled(reason, message);
    await s.event('Warning', reason, message);
    await this.#runEnded(s.obj);
    return {};
  }

  /** No attempt will follow: the run's volumes (Secret and ConfigMap tmpfs included) go now, its log and container stay until it is deleted. */
  async #runEnded(run: ContainerRun): Promise<void> {
    this.#forget(run.metadata.uid!);
    await releaseVolumes(runVolumesDir(this.#o.store.root, run.metadata.uid!));
  }

  #forget(uid: string): void {
    for (const m of [this.#pullFailures, this.#configWaits, this.#notBefore, this.#tailWritten, this.#diskChecked]) m.delete(uid);
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
    this.#o.log.warn({ run: objectKey(run), boundTo: boundNode(run) ?? null }, 'run moved away from this node: removing its containers here');
    await this.#removeAttempts(run);
    return {};
  }

  /** Stops (SIGTERM, grace, SIGKILL) and removes every attempt's container, and the run's volumes. */
  async #removeAttempts(run: ContainerRun): Promise<void> {
    const uid = run.metadata.uid!;
    this.#forget(uid);
    for (let n = 0; n <= (run.status?.restartCount ?? 0); n++) {
      const id = attemptContainerId(uid, n);
      if (await removeContainer(this.#o.store, id, { force: true, graceMs: this.#graceMs })) this.#o.log.info({ run: objectKey(run), id }, 'container stopped');
    }
    await releaseVolumes(runVolumesDir(this.#o.store.root, uid));
    // Nothing of the run is left on the node: its ids (and the snapshots made for them) go back.
    const idMap = this.#o.userns.lookup(uid);
    if (idMap) {
      await this.#o.store.removeSnapshotsFor(idMap);
      await this.#o.userns.release(uid);
    }
  }
}
