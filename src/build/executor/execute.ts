import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { hostPlatform, normalizePlatform, formatPlatform, type Platform } from '../../oci/platform.js';
import { evaluateStage, parseContainerfile, planStages, type PlannedStage } from '../containerfile/index.js';
import { LocalBuildCache } from '../cache/local.js';
import { RegistryBuildCache } from '../cache/registry.js';
import { LayerCompressor } from '../output/compress.js';
import { BuildInterruptedError, type StepLocation } from './errors.js';
import { applyMetadata, historyText } from './metadata.js';
import { copyStep } from './copy-step.js';
import { runStep } from './run-step.js';
import { workdirStep } from './workdir-step.js';
import { BuildRun } from './steps.js';
import type { BaseImageDigest } from './base-digests.js';
import { emptyState, stateFromImage, withLayer, type StageState } from './state.js';
import { SILENT_REPORTER, type ExecuteOptions } from './types.js';
import { DEFAULT_PATH } from '../../runtime/spec.js';

export interface ExecuteResult {
  /** The target stage's final state: layers in the store's layout, config ready to write. */
  state: StageState;
  /** Creation time of the image (the --timestamp, or when the build finished). */
  created: string;
  /** Steps answered from the cache, and steps that did work. */
  cacheHits: number;
  stepsRun: number;
  warnings: string[];
  /** The registry FROM images and the digests they resolved to (with opts.reportBaseImages). */
  baseImages: BaseImageDigest[];
}

/**
 * Runs a Containerfile: parse, plan the stages the target needs, then each stage step by step
 * over the store (snapshots, layers, RUN containers). Nothing is tagged here; the output step
 * writes the image only after every stage succeeded, so an interrupted build leaves no image.
 */
export async function executeBuild(opts: ExecuteOptions): Promise<ExecuteResult> {
  const reporter = opts.reporter ?? SILENT_REPORTER;
  const host = hostPlatform();
  const platform = opts.platform ? normalizePlatform(opts.platform) : host;
  const cf = parseContainerfile(opts.containerfile.text, {
    file: opts.containerfile.name,
    ...(opts.containerfile.more ? { more: opts.containerfile.more } : {}),
  });
  const plan = planStages(cf, {
    ...(opts.target !== undefined ? { target: opts.target } : {}),
    ...(opts.buildArgs ? { buildArgs: opts.buildArgs } : {}),
    platform,
    buildPlatform: host,
  });
  const warnings: string[] = [];
  if (plan.unusedBuildArgs.length > 0) {
    const w = `build args not consumed by any ARG: ${plan.unusedBuildArgs.join(', ')}`;
    warnings.push(w);
    reporter.warn(w);
  }
  const workDir = join(opts.store.root, 'tmp', `build-${randomBytes(8).toString('hex')}`);
  await mkdir(workDir, { recursive: true });
  // One signal for every stage: the caller's cancel, or the first stage that fails.
  const stop = new AbortController();
  const onAbort = (): void => stop.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const compressor = opts.compressor ?? new LayerCompressor(opts.store.layout, join(opts.store.root, 'build-cache'), join(workDir, 'compressed'));
  const remote = new RegistryBuildCache(opts.store.layout, opts.cacheFrom ?? [], opts.cacheTo ?? [], opts.pullContext ?? {}, compressor);
  const run = new BuildRun({ ...opts, reporter, signal: stop.signal }, plan, new LocalBuildCache(opts.store.root, opts.store.layout), workDir, remote);
  let cacheHits = 0;
  let stepsRun = 0;
  let firstError: unknown;
  try {
    // A stage starts as soon as its base stage is done; a COPY --from or RUN --mount from another
    // stage waits for that stage at that step. Independent work thus runs in parallel.
    const done = run.pending;
    for (const [n, stage] of plan.stages.entries()) {
      const needs = stage.base.kind === 'stage' ? [done.get(stage.base.index)!] : [];
      const p = (async () => {
        await Promise.all(needs);
        const state = await buildStage(run, stage, n, platform, (cached) => (cached ? cacheHits++ : stepsRun++));
        run.stages.set(stage.index, state);
        return state;
      })();
      p.catch((err: unknown) => {
        firstError ??= err;
        stop.abort(err);
      });
      done.set(stage.index, p);
    }
    const results = await Promise.allSettled(done.values());
    if (firstError !== undefined || results.some((r) => r.status === 'rejected')) throw firstError;
    let state = run.stages.get(plan.target.index)!;
    if (opts.squash) state = await squashed(run, run.initial.get(plan.target.index)!, state);
    if (opts.exports?.length) {
      const { exportRootfs } = await import('../output/export.js');
      const rootfs = await run.rootfs(state);
      for (const e of opts.exports) await exportRootfs(rootfs, e, opts.timestamp !== undefined ? { timestamp: opts.timestamp } : {});
    }
    const baseImages = (await Promise.all(run.bases.values())).filter((b): b is BaseImageDigest => b !== undefined);
    return { state, created: run.created, cacheHits, stepsRun, warnings, baseImages };
  } catch (err) {
    if (opts.signal?.aborted && !(err instanceof BuildInterruptedError)) throw new BuildInterruptedError();
    throw err;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * `--squash` (buildah's): the layers the stage added on its base become one layer, merged from
 * their own tar headers (owners included: without subordinate ids every file on disk is the
 * caller's, while the layers of `COPY --chown` carry the owners asked for), contents read from the
 * stage's filesystem. The stage's history entries stay, marked empty, and one entry names the
 * squashed layer.
 */
async function squashed(run: BuildRun, base: StageState, state: StageState): Promise<StageState> {
  const added = state.layers.length - base.layers.length;
  if (added <= 1) return state;
  const [{ mergeLayerEntries }, { writeLayer }] = await Promise.all([import('../layers/merge.js'), import('../layers/tar-writer.js')]);
  const signal = run.opts.signal ? { signal: run.opts.signal } : {};
  const entries = await mergeLayerEntries(run.opts.store.layout, state.layers.slice(base.layers.length), await run.rootfs(state), {
    keepWhiteouts: base.layers.length > 0,
    ...(base.layers.length > 0 ? { lower: await run.rootfs(base) } : {}),
    ...signal,
  });
  const layer = entries.length === 0 ? undefined : await run.adopt(await writeLayer(entries, { ...run.layerOptions(), ...signal }));
  const newHistory = state.history.slice(base.history.length).map((h) => ({ ...h, empty_layer: true }));
  const entry = { created: run.created, created_by: `stevedore build --squash: ${added} layers as one`, ...(layer ? {} : { empty_layer: true }) };
  return { ...state, layers: [...base.layers, ...(layer ? [layer] : [])], history: [...base.history, ...newHistory, entry] };
}

async function buildStage(run: BuildRun, stage: PlannedStage, n: number, platform: Platform, counted: (cached: boolean) => void): Promise<StageState> {
  const { plan, opts } = run;
  const reporter = opts.reporter ?? SILENT_REPORTER;
  const stagePlatform = stage.platform ? normalizePlatform(stage.platform) : platform;
  let state: StageState;
  let onBuild: string[] = [];
  // The FROM line as resolved (`FROM $BASE` shows the image it named).
  const fromName =
    stage.base.kind === 'image'
      ? stage.base.ref
      : stage.base.kind === 'scratch'
        ? 'scratch'
        : (plan.stages.find((s) => s.index === (stage.base as { index: number }).index)?.name ?? String((stage.base as { index: number }).index));
  const fromText = `FROM ${stage.platform ? `--platform=${formatPlatform(stage.platform)} ` : ''}${fromName}${stage.name ? ` AS ${stage.name}` : ''}`;
  const stepsTotal = (): number => 1 + evaluation.steps.length;
  const label = { stage: n + 1, stages: plan.stages.length, ...(stage.name ? { stageName: stage.name } : {}) };

  // BuildKit and buildah give a scratch stage the default PATH, so RUN and the image find programs.
  if (stage.base.kind === 'scratch') state = { ...emptyState(stagePlatform), config: { Env: [DEFAULT_PATH] } };
  else if (stage.base.kind === 'stage') state = { ...run.stages.get(stage.base.index)!, cmdSet: false };
  else {
    await run.recordBase(stage.base.ref);
    const image = await run.image(stage.base.ref, stagePlatform);
    state = stateFromImage(image);
    onBuild = [...(state.config.OnBuild ?? [])];
    // Triggers run once, in the child build; they are not passed on to grandchildren.
    if (state.config.OnBuild) state = { ...state, config: { ...state.config, OnBuild: null } };
  }
  run.initial.set(stage.index, state);
  const evaluation = evaluateStage(plan, stage, { baseEnv: state.config.Env ?? [], onBuild });
  reporter.step({ ...label, step: 1, steps: stepsTotal(), text: fromText });

  // Steps that work on the filesystem before them: a RUN runs on it, a COPY or WORKDIR looks at it.
  const laterNeedsRootfs = (i: number): boolean => evaluation.steps.slice(i + 1).some((s) => ['RUN', 'COPY', 'ADD', 'WORKDIR'].includes(s.instruction.kind));
  for (const [i, step] of evaluation.steps.entries()) {
    opts.signal?.throwIfAborted();
    const inst = step.instruction;
    const loc: StepLocation = { file: inst.file ?? plan.file, line: inst.line, instruction: inst.kind, text: inst.original };
    reporter.step({ ...label, step: i + 2, steps: stepsTotal(), text: step.onBuild ? `${inst.original} (ONBUILD)` : inst.original });
    const started = Date.now();
    let outcome: { state: StageState; cached: boolean; layer: Awaited<ReturnType<typeof copyStep>>['layer'] } | undefined;
    switch (inst.kind) {
      case 'RUN':
        outcome = await runStep(run, state, inst, step.runEnv, loc);
        break;
      case 'COPY':
      case 'ADD':
        outcome = await copyStep(run, state, inst, loc, { snapshotNeeded: laterNeedsRootfs(i) });
        break;
      case 'WORKDIR':
        outcome = await workdirStep(run, state, applyMetadata(state, inst), inst);
        break;
      default: {
        const next = applyMetadata(state, inst);
        state = withLayer(next, undefined, run.history(historyText(inst, state.config)));
      }
    }
    if (outcome) {
      state = outcome.state;
      // A later RUN of this stage will need this filesystem: unpack it while other work goes on.
      if (outcome.layer && evaluation.steps.slice(i + 1).some((s) => s.instruction.kind === 'RUN')) run.prefetch(state);
      counted(outcome.cached);
      if (outcome.cached) reporter.cached(outcome.layer);
      else reporter.layer(outcome.layer, Date.now() - started);
    }
  }
  return state;
}
