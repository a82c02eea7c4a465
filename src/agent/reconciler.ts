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
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { API_VERSION, GROUP, VERSION } from '../k8s/api/common.js';
import { CONTAINER_RUN_FINALIZER, type ContainerRun, type ContainerRunStatus } from '../k8s/api/containerrun.js';
import { markReady, markReconciling, markStalled } from '../k8s/conditions.js';
import { isNotFound, resourcePath, type KubeClient, type ResourcePath } from '../k8s/runtime/client.js';
import type { ReconcileRequest, ReconcileResult, Reconciler } from '../k8s/runtime/controller.js';
import type { EventRecorder } from '../k8s/runtime/events.js';
import { parseDuration } from '../util/duration.js';
import type { RunOptions } from '../runtime/container.js';
import { processAlive, type ContainerRecord } from '../runtime/containers.js';
import { ociRuntime, type RuntimeName } from '../runtime/oci-runtime.js';
import type { ImageStore } from '../runtime/store/index.js';
import { errorMessage } from '../util/errors.js';
import { ConfigSourceError, ConfigSources } from './config-sources.js';
import { resolveEnv } from './env.js';
import { attemptState, type LaunchContainer } from './launch.js';
import { attemptContainerId, attemptContainerName } from './naming.js';
import { pullCredentials } from './pull-credentials.js';
import { judgeRunImage } from './run-policy.js';
import type { Policy } from '../policy/types.js';
import { readLogTail } from './log-tail.js';
import { restartDelayMs, signalOfExitCode } from './status-text.js';
import { prepareVolumes, quantityBytes, runVolumesDir } from './volumes.js';

export const CONTAINER_RUN_RESOURCE: ResourcePath = { group: GROUP, version: VERSION, plural: 'containerruns' };

export interface AgentReconcilerOptions {
  nodeName: string;
  store: ImageStore;
  launch: LaunchContainer;
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

const run_ = promisify(execFile);

/** Gone, or a zombie: a monitor orphaned by an earlier agent may wait for a PID 1 that never reaps. */
function processGone(pid: number): boolean {
  return !processAlive(pid);
}

async function waitProcessGone(pid: number | undefined, ms: number): Promise<void> {
  if (pid === undefined) return;
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (processGone(pid)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`container monitor ${pid} did not exit`);
}

export class ContainerRunAgentReconciler implements Reconciler<ContainerRun> {
  readonly name = 'containerrun-agent';
  readonly resource = CONTAINER_RUN_RESOURCE;
  readonly #client: KubeClient;
  readonly #o: AgentReconcilerOptions;
  /** Failed pulls per run uid, for the pull back-off (reset by a successful pull). */
  readonly #pullFailures = new Map<string, number>();

  constructor(client: KubeClient, o: AgentReconcilerOptions) {
    this.#client = client;
    this.#o = o;
  }

  /** Only runs bound to this node concern it (and a run just moved away, to forget it). */
  shouldEnqueueUpdate(a: ContainerRun, b: ContainerRun): boolean {
    return boundNode(b) === this.#o.nodeName || boundNode(a) === this.#o.nodeName;
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
    if (status.phase && TERMINAL.has(status.phase)) return {};

    const attempt = status.restartCount ?? 0;
    const id = attemptContainerId(run.metadata.uid!, attempt);
    const st = await attemptState(this.#o.store, id);
    if (st.state === 'running') return this.#observeRunning(run, st.record);
    if (st.state === 'exited') return this.#finishAttempt(run, await this.#outcome(st.record));
    if (st.state === 'lost') {
      // Nobody watches that container any more: make sure it does not run on unobserved.
      const rt = ociRuntime(st.record.runtime, st.record.stateRoot ? { stateRoot: st.record.stateRoot } : {});
      await rt.kill(id, 'SIGKILL', { all: true }).catch(() => undefined);
      await rt.delete(id, { force: true }).catch(() => undefined);
      const outcome = await this.#outcome(st.record);
      return this.#finishAttempt(run, { ...outcome, exitCode: undefined, reason: 'Error', message: 'the container was lost: its monitor process is gone (was the node restarted?)' });
    }
    // Not started yet: after a failed attempt, wait out the restart back-off first.
    if (attempt > 0 && status.finishedAt) {
      const due = Date.parse(status.finishedAt) + this.#restartDelay(attempt - 1);
      if (due > Date.now()) return { requeueAfterMs: due - Date.now() };
    }
    await this.#stopEarlierAttempts(run, attempt);
    return this.#start(run, attempt, id, signal);
  }

  /**
   * An earlier attempt can still run here when the run was failed over while this agent was away
   * and then bound to this node again: stop it before the next attempt starts (its log is kept).
   */
  async #stopEarlierAttempts(run: ContainerRun, attempt: number): Promise<void> {
    for (let n = 0; n < attempt; n++) {
      const id = attemptContainerId(run.metadata.uid!, n);
      const st = await attemptState(this.#o.store, id);
      if (st.state !== 'running' && st.state !== 'lost') continue;
      this.#o.log.warn({ run: `${run.metadata.namespace}/${run.metadata.name}`, attempt: n }, 'an earlier attempt still runs: stopping it');
      const rt = ociRuntime(st.record.runtime, st.record.stateRoot ? { stateRoot: st.record.stateRoot } : {});
      await rt.kill(id, 'SIGKILL', { all: true }).catch(() => undefined);
      if (st.state === 'running') await waitProcessGone(st.record.monitorPid, 15_000);
      else await rt.delete(id, { force: true }).catch(() => undefined);
    }
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
    await this.#patchStatus(run, {
      phase: 'Pulling',
      nodeName: this.#o.nodeName,
      reason: 'Pulling',
      message: `pulling ${spec.image}`,
      observedGeneration: gen,
      conditions: markReconciling(run.status?.conditions, gen, 'Pulling', `pulling ${spec.image}`),
    });
    const sources = new ConfigSources(this.#client, ns);
    let imageName: string;
    let imageDigest: string;
    try {
      const credentials = await pullCredentials(spec.image, spec.imagePullSecrets, sources);
      const context = credentials ? { credentials } : undefined;
      let source = spec.image;
      if (this.#o.policy) {
        const verdict = await judgeRunImage(this.#o.policy, spec.image, context, signal);
        if (!verdict.allowed) return this.#denied(run, verdict.reason);
        log.info({ image: verdict.pull, reason: verdict.reason }, 'image accepted by the node policy');
        source = verdict.pull;
      }
      // A digest is immutable: pull only when missing. A tag is looked up again for each attempt.
      const pullPolicy = source.includes('@sha256:') ? 'missing' : 'always';
      const image = await this.#o.store.pull(source, { policy: pullPolicy, context, signal });
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
        return { requeueAfterMs: delay };
      }
      this.#pullFailures.delete(run.metadata.uid!);
      return this.#finishAttempt(run, { reason: 'ErrImagePull', message: `${message} (${tries} tries)`, finishedAt: new Date().toISOString() });
    }
    this.#pullFailures.delete(run.metadata.uid!);
    let options: RunOptions;
    try {
      const env = await resolveEnv(spec, sources);
      const mounts = await prepareVolumes(spec, runVolumesDir(this.#o.store.root, run.metadata.uid!), sources);
      options = {
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
        tmpfs: mounts.tmpfs,
        memory: spec.resources?.memory !== undefined ? quantityBytes(spec.resources.memory) : undefined,
        cpus: cpus(spec.resources?.cpu),
        pidsLimit: spec.resources?.pids,
        timeoutSeconds: spec.timeout ? parseDuration(spec.timeout) / 1000 : undefined,
        stopGraceSeconds: this.#o.stopGraceSeconds ?? 10,
        runtime: spec.runtime ?? this.#o.runtime ?? 'runc',
        hostname: run.metadata.name!.slice(0, 63),
      };
    } catch (err) {
      if (!(err instanceof ConfigSourceError)) throw err;
      // Like a kubelet's CreateContainerConfigError: wait for the ConfigMap or Secret to appear.
      await this.#patchStatus(run, {
        phase: 'Pending',
        reason: err.reason,
        message: err.message,
        conditions: markReconciling(run.status?.conditions, gen, err.reason, err.message),
      });
      await this.#event(run, 'Warning', err.reason, err.message);
      return { requeueAfterMs: 10_000 };
    }
    // Taken before the launch: a quick command may have finished by the time it returns.
    const startedAt = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const started = await this.#o.launch(this.#o.store, options);
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
      finishedAt: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
      conditions: markStalled(run.status?.conditions, gen, 'PolicyDenied', message),
    });
    await this.#event(run, 'Warning', 'PolicyDenied', message);
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
    if (tail !== (s.logTail ?? '')) patch.logTail = tail;
    if (Object.keys(patch).length > 0) await this.#patchStatus(run, patch);
    return { requeueAfterMs: this.#o.pollMs ?? 1000 };
  }

  async #outcome(rec: ContainerRecord): Promise<AttemptOutcome> {
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
      finishedAt: (rec.finishedAt ?? new Date().toISOString()).replace(/\.\d{3}Z$/, 'Z'),
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
      return {};
    }
    const limit = spec.backoffLimit ?? DEFAULT_BACKOFF_LIMIT;
    // A deadline is the run's, not the attempt's: it is not retried (as a Job's activeDeadlineSeconds).
    if (spec.restartPolicy === 'OnFailure' && o.reason !== 'DeadlineExceeded' && restarts < limit) {
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
    const exhausted = spec.restartPolicy === 'OnFailure' && o.reason !== 'DeadlineExceeded';
    const reason = exhausted ? 'BackoffLimitExceeded' : o.reason;
    const message = exhausted ? `failed after ${restarts + 1} attempts; last: ${o.reason}: ${o.message}` : o.message;
    await this.#patchStatus(run, { ...common, phase: 'Failed', reason, message, conditions: markStalled(s.conditions, gen, reason, message) });
    await this.#event(run, 'Warning', reason, message);
    return {};
  }

  /**
   * A run bound to another node (failed over while this agent was away) or no longer bound: kill
   * and remove whatever this node still has of it, so one run never runs on two nodes for long.
   */
  async #releaseMoved(run: ContainerRun): Promise<ReconcileResult> {
    if (!run.metadata.uid) return {};
    let mine = false;
    for (let n = 0; n <= (run.status?.restartCount ?? 0); n++) {
      if ((await attemptState(this.#o.store, attemptContainerId(run.metadata.uid, n))).state !== 'absent') mine = true;
    }
    if (!mine) return {};
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
    const grace = (this.#o.stopGraceSeconds ?? 10) * 1000;
    for (let n = 0; n <= (run.status?.restartCount ?? 0); n++) {
      const id = attemptContainerId(uid, n);
      let st = await attemptState(this.#o.store, id);
      if (st.state === 'running') {
        const rt = ociRuntime(st.record.runtime, st.record.stateRoot ? { stateRoot: st.record.stateRoot } : {});
        await rt.kill(id, 'SIGTERM', { all: true }).catch(() => undefined);
        const deadline = Date.now() + grace;
        let killed = false;
        for (;;) {
          st = await attemptState(this.#o.store, id);
          if (st.state !== 'running') break;
          if (!killed && Date.now() > deadline) {
            killed = true;
            await rt.kill(id, 'SIGKILL', { all: true }).catch(() => undefined);
          }
          if (Date.now() > deadline + 15_000) throw new Error(`container ${id} of ${run.metadata.name} did not exit after SIGKILL`);
          await new Promise((r) => setTimeout(r, 100));
        }
        this.#o.log.info({ run: `${run.metadata.namespace}/${run.metadata.name}`, id }, 'container stopped');
      }
      if (st.state === 'lost') {
        // No monitor: stop the container ourselves and undo the rootfs mount it would have undone.
        const rt = ociRuntime(st.record.runtime, st.record.stateRoot ? { stateRoot: st.record.stateRoot } : {});
        await rt.kill(id, 'SIGKILL', { all: true }).catch(() => undefined);
        await rt.delete(id, { force: true }).catch(() => undefined);
        await run_('umount', [join(st.record.bundle, 'rootfs')]).catch(() => undefined);
      }
      // The monitor unmounts the rootfs after recording the exit: remove nothing under its feet.
      if (st.state !== 'absent') await waitProcessGone(st.record.monitorPid, 15_000);
      await rm(join(this.#o.store.root, 'containers', id), { recursive: true, force: true });
    }
    await rm(runVolumesDir(this.#o.store.root, uid), { recursive: true, force: true });
  }

  async #patchStatus(run: ContainerRun, status: Partial<Record<keyof ContainerRunStatus, unknown>>): Promise<void> {
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
