import { hostPlatform, parsePlatform, type Platform } from '../../oci/platform.js';
import { PLATFORM_ARGS, PROXY_ARGS, platformArgs } from './args.js';
import { expandWord } from './expand.js';
import { ContainerfileError, ExpansionError, closest } from './errors.js';
import type { ArgInstruction, FromInstruction, Instruction } from './instructions.js';
import type { Containerfile } from './parser.js';
import { StageScope } from './scope.js';

/**
 * Stages and build planning: which stages the target needs (through FROM <stage>, COPY --from and
 * RUN --mount=from), in an order where every stage comes after what it needs, with the edges that
 * let independent stages build in parallel.
 */
export interface Stage {
  /** Position in the file, 0-based: what `COPY --from=0` means. */
  index: number;
  name?: string;
  from: FromInstruction;
  /** The stage's instructions after its FROM. */
  instructions: Instruction[];
}

export type StageBase = { kind: 'scratch' } | { kind: 'image'; ref: string } | { kind: 'stage'; index: number };

export interface PlannedStage extends Stage {
  base: StageBase;
  /** From `FROM --platform=...`, expanded and parsed. */
  platform?: Platform;
  /** Indexes of the stages this one needs: its base stage and every --from / mount from stage. */
  dependsOn: number[];
  /** External images named by COPY --from or RUN --mount=from (not the base image). */
  images: string[];
}

export interface PlanOptions {
  /** Stage to build (name, case-insensitive); the last stage by default. */
  target?: string;
  buildArgs?: ReadonlyMap<string, string> | Readonly<Record<string, string>>;
  /** Platform the image is built for (TARGET* args); the host by default. */
  platform?: Platform;
  /** Platform the build runs on (BUILD* args); the host by default. */
  buildPlatform?: Platform;
}

export interface BuildPlan {
  file: string;
  escape: string;
  /** Only the stages the target needs, dependencies first (ties in file order). */
  stages: PlannedStage[];
  target: PlannedStage;
  /** The global scope: predefined platform args and global ARG values (build args applied). */
  globalArgs: ReadonlyMap<string, string>;
  buildArgs: ReadonlyMap<string, string>;
  /** Build args no ARG in the used stages (or the global scope) declares, as BuildKit warns. */
  unusedBuildArgs: string[];
}

/** Splits the instruction list into the global ARGs and the stages. */
export function splitStages(cf: Containerfile): { globalArgs: ArgInstruction[]; stages: Stage[] } {
  const globalArgs: ArgInstruction[] = [];
  const stages: Stage[] = [];
  for (const inst of cf.instructions) {
    if (inst.kind === 'FROM') {
      const stage: Stage = { index: stages.length, from: inst, instructions: [] };
      if (inst.stageName !== undefined) stage.name = inst.stageName;
      stages.push(stage);
    } else if (stages.length > 0) stages[stages.length - 1]!.instructions.push(inst);
    else if (inst.kind === 'ARG') globalArgs.push(inst);
    else {
      throw new ContainerfileError({ file: inst.file ?? cf.file, line: inst.line, instruction: inst.kind }, 'no build stage in current context');
    }
  }
  return { globalArgs, stages };
}

/**
 * Resolves the global scope: platform args first, then each global ARG in order — a build arg wins,
 * else its default expanded with what is already declared, else a predefined value of that name.
 */
export function resolveGlobalArgs(
  file: string,
  escape: string,
  globalArgs: readonly ArgInstruction[],
  buildArgs: ReadonlyMap<string, string>,
  platforms: { target: Platform; build: Platform },
): { values: Map<string, string>; declared: Set<string> } {
  const values = platformArgs(platforms.target, platforms.build);
  const declared = new Set<string>();
  for (const inst of globalArgs) {
    for (const arg of inst.args) {
      declared.add(arg.name);
      let value: string | undefined;
      if (buildArgs.has(arg.name)) value = buildArgs.get(arg.name);
      else if (arg.default !== undefined) value = expandAt(file, inst, arg.default, values, escape);
      else value = values.get(arg.name);
      if (value !== undefined) values.set(arg.name, value);
    }
  }
  return { values, declared };
}

export function planStages(cf: Containerfile, opts: PlanOptions = {}): BuildPlan {
  const file = cf.file;
  const escape = cf.directives.escape;
  const buildArgs = toMap(opts.buildArgs);
  const { globalArgs, stages } = splitStages(cf);
  if (stages.length === 0) throw new ContainerfileError({ file }, 'no FROM instruction: a Containerfile needs at least one build stage');
  const host = hostPlatform();
  const global = resolveGlobalArgs(file, escape, globalArgs, buildArgs, {
    target: opts.platform ?? host,
    build: opts.buildPlatform ?? host,
  });

  const byName = new Map<string, number>();
  for (const s of stages) {
    if (s.name === undefined) continue;
    if (byName.has(s.name)) {
      throw new ContainerfileError(
        { file: s.from.file ?? file, line: s.from.line, instruction: 'FROM' },
        `duplicate stage name "${s.name}" (first defined on line ${stages[byName.get(s.name)!]!.from.line})`,
      );
    }
    byName.set(s.name, s.index);
  }

  const planned: PlannedStage[] = [];
  const declaredInStage: Set<string>[] = [];
  /** ENV known without the base image's config, per stage: enough to expand --from values. */
  const staticEnv: Map<string, string>[] = [];
  for (const s of stages) {
    const image = expandAt(file, s.from, s.from.image, global.values, escape);
    if (image === '') {
      throw new ContainerfileError({ file: s.from.file ?? file, line: s.from.line, instruction: 'FROM' }, `base name (${s.from.image}) should not be blank`);
    }
    let base: StageBase;
    const earlier = byName.get(image.toLowerCase());
    if (earlier !== undefined && earlier < s.index) base = { kind: 'stage', index: earlier };
    else if (image === 'scratch') base = { kind: 'scratch' };
    else base = { kind: 'image', ref: image };
    const p: PlannedStage = { ...s, base, dependsOn: base.kind === 'stage' ? [base.index] : [], images: [] };
    if (s.from.platform !== undefined) {
      const text = expandAt(file, s.from, s.from.platform, global.values, escape);
      try {
        p.platform = parsePlatform(text);
      } catch (err) {
        throw new ContainerfileError({ file: s.from.file ?? file, line: s.from.line, instruction: 'FROM' }, `--platform: ${(err as Error).message}`);
      }
    }

    // Walk the stage's ARG/ENV to expand --from values the way the evaluator will.
    const scope = new StageScope(global.values, buildArgs, escape, base.kind === 'stage' ? staticEnv[base.index]! : []);
    const declared = new Set<string>();
    const addRef = (inst: Instruction, flag: string, raw: string): void => {
      const ref = expandAt(file, inst, raw, scope.lookup, escape);
      const dep = resolveStageRef(ref, stages.length, byName);
      const loc = { file: inst.file ?? file, line: inst.line, instruction: inst.kind };
      if (dep === 'out-of-range') throw new ContainerfileError(loc, `${flag}=${ref}: index out of bounds (the file has ${stages.length} stages)`);
      if (dep === undefined) {
        if (ref === '') throw new ContainerfileError(loc, `${flag} must not be empty`);
        if (!p.images.includes(ref)) p.images.push(ref);
        return;
      }
      if (dep === s.index) throw new ContainerfileError(loc, `circular dependency detected on stage: ${stageLabel(s)} (${flag}=${ref} is the stage itself)`);
      if (!p.dependsOn.includes(dep)) p.dependsOn.push(dep);
    };
    for (const inst of s.instructions) {
      try {
        if (inst.kind === 'ARG')
          for (const a of inst.args) {
            declared.add(a.name);
            scope.declareArg(a.name, a.default);
          }
        else if (inst.kind === 'ENV') for (const kv of inst.pairs) scope.setEnv(scope.expand(kv.key), scope.expand(kv.value));
      } catch (err) {
        if (err instanceof ExpansionError) throw new ContainerfileError({ file: inst.file ?? file, line: inst.line, instruction: inst.kind }, err.message);
        throw err;
      }
      if (inst.kind === 'COPY' && inst.from !== undefined) addRef(inst, '--from', inst.from);
      if (inst.kind === 'RUN') {
        for (const m of inst.mounts) if ((m.type === 'bind' || m.type === 'cache') && m.from !== undefined) addRef(inst, '--mount from', m.from);
      }
    }
    staticEnv.push(scope.env);
    declaredInStage.push(declared);
    planned.push(p);
  }

  let targetIndex = stages.length - 1;
  if (opts.target !== undefined) {
    const t = byName.get(opts.target.toLowerCase());
    if (t === undefined) {
      const hint = closest(opts.target, [...byName.keys()]);
      throw new ContainerfileError({ file }, `target stage "${opts.target}" could not be found${hint ? ` (did you mean ${hint}?)` : ''}`);
    }
    targetIndex = t;
  }

  const needed = reachable(planned, targetIndex, file);
  const ordered = topoOrder(planned, needed);

  const used = new Set<string>([...global.declared, ...PROXY_ARGS, ...PLATFORM_ARGS]);
  for (const i of needed) for (const n of declaredInStage[i]!) used.add(n);
  const unusedBuildArgs = [...buildArgs.keys()].filter((k) => !used.has(k)).sort();

  return {
    file,
    escape,
    stages: ordered,
    target: planned[targetIndex]!,
    globalArgs: global.values,
    buildArgs,
    unusedBuildArgs,
  };
}

/** A stage index for `--from` text: a number is an index, a known name a stage; else an image. */
function resolveStageRef(ref: string, count: number, byName: ReadonlyMap<string, number>): number | 'out-of-range' | undefined {
  if (/^\d+$/.test(ref)) {
    const i = Number(ref);
    return i < count ? i : 'out-of-range';
  }
  return byName.get(ref.toLowerCase());
}

function stageLabel(s: Stage): string {
  return s.name ?? String(s.index);
}

/** The target and everything it needs; a cycle (possible through forward --from) is an error. */
function reachable(stages: readonly PlannedStage[], target: number, file: string): Set<number> {
  const done = new Set<number>();
  const onPath = new Set<number>();
  const visit = (i: number): void => {
    if (done.has(i)) return;
    const s = stages[i]!;
    if (onPath.has(i)) {
      throw new ContainerfileError(
        { file: s.from.file ?? file, line: s.from.line, instruction: 'FROM' },
        `circular dependency detected on stage: ${stageLabel(s)}`,
      );
    }
    onPath.add(i);
    for (const d of s.dependsOn) visit(d);
    onPath.delete(i);
    done.add(i);
  };
  visit(target);
  return done;
}

/** Kahn's algorithm, always taking the lowest-index ready stage, so the order is stable and readable. */
function topoOrder(stages: readonly PlannedStage[], needed: ReadonlySet<number>): PlannedStage[] {
  const out: PlannedStage[] = [];
  const emitted = new Set<number>();
  const pending = [...needed].sort((a, b) => a - b);
  while (pending.length > 0) {
    const k = pending.findIndex((i) => stages[i]!.dependsOn.every((d) => emitted.has(d)));
    const i = pending.splice(k, 1)[0]!;
    emitted.add(i);
    out.push(stages[i]!);
  }
  return out;
}

function expandAt(
  file: string,
  inst: Instruction,
  word: string,
  vars: ReadonlyMap<string, string> | ((n: string) => string | undefined),
  escape: string,
): string {
  try {
    return expandWord(word, vars, { escape });
  } catch (err) {
    if (err instanceof ExpansionError) throw new ContainerfileError({ file: inst.file ?? file, line: inst.line, instruction: inst.kind }, err.message);
    throw err;
  }
}

function toMap(args: PlanOptions['buildArgs']): Map<string, string> {
  if (args === undefined) return new Map();
  if (args instanceof Map) return new Map(args);
  return new Map(Object.entries(args as Record<string, string>));
}
