import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runContainer, ContainerStartError } from '../../runtime/container.js';
import { errorMessage } from '../../util/errors.js';
import { runScript, type RunInstruction } from '../containerfile/index.js';
import { cacheKey } from '../cache/key.js';
import { BuildInterruptedError, BuildStepError, type StepLocation } from './errors.js';
import { historyText, shellOf } from './metadata.js';
import { dropMountPoints } from './mountpoints.js';
import { emulationProblem } from './emulation.js';
import { prepareMounts } from './run-mounts.js';
import type { BuildRun } from './steps.js';
import { asStoredImage, topChain, withLayer, type BuiltLayer, type StageState } from './state.js';

/** Lines of output kept for the error message of a failed RUN. */
const TAIL_LINES = 20;

class OutputTail {
  #text = '';
  push(chunk: Buffer): void {
    this.#text = (this.#text + chunk.toString()).slice(-16 * 1024);
  }
  lines(): string[] {
    return this.#text.replace(/\n$/, '').split('\n').slice(-TAIL_LINES);
  }
}

/**
 * RUN: a container (the runtime core, runc) on an overlay over the stage's snapshot; the overlay's
 * upper directory becomes the layer. Where overlay cannot be mounted the runtime copies the
 * snapshot and the layer is a tree diff against it. The cache key is the parent filesystem, the
 * command, its environment, user, working directory, network and mounts.
 */
export async function runStep(
  run: BuildRun,
  state: StageState,
  inst: RunInstruction,
  runEnv: readonly string[],
  loc: StepLocation,
): Promise<{ state: StageState; cached: boolean; layer: BuiltLayer | undefined }> {
  const script = runScript(inst);
  const workdir = state.config.WorkingDir || '/';
  const mounts = await prepareMounts(run, inst.mounts, workdir, loc);
  const binds = [...mounts.binds];
  let argv: string[];
  if (script.kind === 'exec') argv = script.args;
  else if (script.kind === 'shell') argv = [...shellOf(state.config), script.script];
  else {
    // A heredoc with a #! line is a program of its own: BuildKit runs it from /dev/pipes.
    const file = join(run.workDir, `heredoc-${randomBytes(6).toString('hex')}`);
    await writeFile(file, script.content);
    await chmod(file, 0o755);
    const target = `/dev/pipes/${script.name}`;
    binds.push({ source: file, destination: target, readonly: true });
    argv = [target];
  }
  if (argv.length === 0) throw new BuildStepError(loc, 'RUN has no command');
  const network = inst.network === 'none' ? 'none' : 'host';
  if (inst.security === 'insecure')
    run.opts.reporter?.warn(`${loc.file}:${loc.line}: RUN --security=insecure is not supported: the step runs sandboxed like every RUN`);
  const env = [...runEnv, ...mounts.env];
  const key = cacheKey(topChain(state), 'RUN', {
    argv,
    // Secret values (mounts.env) stay out of the key.
    env: runEnv,
    user: state.config.User ?? '',
    workdir,
    network,
    mounts: mounts.key,
    heredoc: script.kind === 'file' ? script.content : null,
    timestamp: run.opts.timestamp ?? null,
  });
  const history = run.history(historyText(inst, state.config));
  const hit = await run.cached(key);
  if (hit) return { state: withLayer(state, hit.layer, history), cached: true, layer: hit.layer };

  const foreign = await emulationProblem(state.platform);
  if (foreign) throw new BuildStepError(loc, foreign);
  const image = asStoredImage(state, 'build');
  const lower = await run.rootfs(state);
  const tail = new OutputTail();
  const onOutput = (c: Buffer): void => {
    tail.push(c);
    run.opts.reporter?.output(c);
  };
  let result;
  if (run.opts.signal?.aborted) throw new BuildInterruptedError();
  try {
    result = await runContainer(run.store, {
      image: 'build',
      prepared: image,
      record: false,
      remove: false,
      // A cancelled build stops its RUN at once: nothing of it is kept.
      stopGraceSeconds: 1,
      entrypoint: argv,
      args: [],
      env,
      binds,
      tmpfs: mounts.tmpfs,
      network,
      runtime: run.opts.runtime ?? 'runc',
      ...(run.opts.rootfsMode ? { rootfsMode: run.opts.rootfsMode } : {}),
      stdout: onOutput,
      stderr: onOutput,
      onWarning: (w) => run.opts.reporter?.warn(w),
      ...(run.opts.signal ? { signal: run.opts.signal } : {}),
    });
  } catch (err) {
    if (run.opts.signal?.aborted) throw new BuildInterruptedError();
    if (err instanceof ContainerStartError) {
      throw new BuildStepError(loc, `${errorMessage(err)} (exit code ${err.exitCode})`, { exitCode: err.exitCode, outputTail: tail.lines(), cause: err });
    }
    throw new BuildStepError(loc, errorMessage(err), { cause: err, outputTail: tail.lines() });
  }
  const bundle = result.bundle;
  try {
    if (result.reason === 'Cancelled' || run.opts.signal?.aborted) throw new BuildInterruptedError();
    if (result.exitCode !== 0) {
      throw new BuildStepError(loc, `command exited with code ${result.exitCode}`, { exitCode: result.exitCode, outputTail: tail.lines() });
    }
    const layerOpts = run.layerOptions();
    // Loaded when a RUN needs it: builds without RUN never load the diff code.
    const { upperToLayer, treeDiffLayer } = await import('../layers/diff.js');
    let file;
    if (result.rootfsMode === 'overlay') {
      const upper = join(bundle, 'upper');
      await dropMountPoints(upper, lower, mounts.targets.concat(script.kind === 'file' ? ['/dev/pipes'] : []));
      file = await upperToLayer(upper, layerOpts);
    } else {
      const copy = join(bundle, 'rootfs');
      await dropMountPoints(copy, lower, mounts.targets);
      file = await treeDiffLayer(lower, copy, layerOpts);
    }
    const layer = await run.adopt(file);
    await run.remember(key, layer);
    return { state: withLayer(state, layer, history), cached: false, layer };
  } finally {
    await rm(bundle, { recursive: true, force: true }).catch(() => undefined);
    await mkdir(run.workDir, { recursive: true }).catch(() => undefined);
  }
}
