import { expandWord } from './expand.js';
import { ContainerfileError, ExpansionError } from './errors.js';
import { checkChecksum, checkChmod } from './flags.js';
import type { CopySource, Instruction } from './instructions.js';
import { MountError, validateMount, type Mount } from './mounts.js';
import { parseInstructions } from './parser.js';
import { checkSignal } from './signals.js';
import { envPairs, StageScope } from './scope.js';
import type { BuildPlan, PlannedStage } from './stages.js';

/**
 * Stage evaluation: walks a planned stage's instructions with its variable scope, expanding what the
 * builder expands (ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER VOLUME WORKDIR, ARG defaults, and
 * the values of COPY/ADD flags and RUN mounts) and leaving RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK
 * commands to their shell. The executor then only has to run steps.
 */
export interface EvaluatedStep {
  /** The instruction with its expandable strings expanded. */
  instruction: Instruction;
  /** The environment a RUN at this point sees (ARG values, ENV, proxy build args). */
  runEnv: string[];
  /** Set when the step came from the base image's ONBUILD triggers. */
  onBuild?: true;
}

export interface StageEvaluation {
  steps: EvaluatedStep[];
  /** The image config Env at the end of the stage. */
  env: string[];
}

export interface EvaluateOptions {
  /** The base's config Env (`K=V`): an image's, or for `FROM <stage>` that stage's final `env`. */
  baseEnv?: readonly string[];
  /** The base image's OnBuild triggers; BuildKit runs them right after FROM. */
  onBuild?: readonly string[];
}

export function evaluateStage(plan: BuildPlan, stage: PlannedStage, opts: EvaluateOptions = {}): StageEvaluation {
  const scope = new StageScope(plan.globalArgs, plan.buildArgs, plan.escape, envPairs(opts.baseEnv ?? []));
  const triggers = opts.onBuild && opts.onBuild.length > 0 ? applyOnBuild(opts.onBuild, { file: stage.from.file ?? plan.file, line: stage.from.line }) : [];
  const steps: EvaluatedStep[] = [];
  const run = (inst: Instruction, onBuild: boolean): void => {
    const expanded = expandInstruction(inst, scope, plan.file);
    if (expanded.kind === 'ENV') for (const kv of expanded.pairs) scope.setEnv(kv.key, kv.value);
    const step: EvaluatedStep = { instruction: expanded, runEnv: scope.runEnv() };
    if (onBuild) step.onBuild = true;
    steps.push(step);
  };
  for (const t of triggers) run(t, true);
  for (const inst of stage.instructions) run(inst, false);
  return { steps, env: scope.imageEnv() };
}

/**
 * Expands one instruction in a scope. ARG is special: declaring it changes the scope, so it is
 * applied here (its default expanded, a build arg winning) and returned with the values it took.
 */
export function expandInstruction(inst: Instruction, scope: StageScope, file: string): Instruction {
  const loc = { file: inst.file ?? file, line: inst.line, instruction: inst.kind };
  const fail = (detail: string): never => {
    throw new ContainerfileError(loc, detail);
  };
  const x = (word: string): string => {
    try {
      return scope.expand(word);
    } catch (err) {
      if (err instanceof ExpansionError) return fail(err.message);
      throw err;
    }
  };
  const opt = (word: string | undefined): string | undefined => (word === undefined ? undefined : x(word));

  switch (inst.kind) {
    case 'ARG': {
      const args = inst.args.map((a) => {
        let value: string | undefined;
        try {
          value = scope.declareArg(a.name, a.default);
        } catch (err) {
          if (err instanceof ExpansionError) fail(err.message);
          throw err;
        }
        return value === undefined ? { name: a.name } : { name: a.name, default: value };
      });
      return { ...inst, args };
    }
    case 'ENV':
    case 'LABEL': {
      // Each pair sees the scope as it was before the instruction (ENV A=1 B=$A: B is the old A).
      const pairs = inst.pairs.map((kv) => ({ key: x(kv.key), value: x(kv.value) }));
      if (pairs.some((kv) => kv.key === '')) fail(`${inst.kind} names can not be blank`);
      return { ...inst, pairs };
    }
    case 'COPY':
    case 'ADD': {
      const sources = inst.sources.map((s): CopySource => {
        if (s.kind === 'path') return { kind: 'path', path: x(s.path) };
        if (!s.expand) return s;
        // Heredoc bodies expand like BuildKit: `$` only, quotes literal, `\` the escape.
        try {
          return { ...s, content: expandWord(s.content, scope.lookup, { skipProcessQuotes: true }) };
        } catch (err) {
          if (err instanceof ExpansionError) return fail(`<<${s.name}: ${err.message}`);
          throw err;
        }
      });
      const out = { ...inst, sources, dest: x(inst.dest), exclude: inst.exclude.map(x) };
      if (inst.chown !== undefined) {
        out.chown = x(inst.chown);
        const problem = checkChown(inst.chown, out.chown, scope);
        if (problem) fail(problem);
      }
      if (inst.chmod !== undefined) {
        out.chmod = x(inst.chmod);
        const problem = checkChmod(out.chmod);
        if (problem) fail(problem);
      }
      if (out.kind === 'COPY' && out.from !== undefined) out.from = x(out.from);
      if (out.kind === 'ADD' && out.checksum !== undefined) {
        out.checksum = x(out.checksum);
        const problem = checkChecksum(out.checksum);
        if (problem) fail(problem);
      }
      if (out.dest === '') fail('destination must not be empty');
      return out;
    }
    case 'RUN': {
      const mounts = inst.mounts.map((m) => {
        const e = expandMount(m, x);
        try {
          validateMount(e);
        } catch (err) {
          if (err instanceof MountError) fail(`--mount: ${err.message}`);
          throw err;
        }
        return e;
      });
      return { ...inst, mounts };
    }
    case 'EXPOSE': {
      // Each word expands; a variable holding "80 443" yields two ports.
      const ports = inst.ports.flatMap((p) => {
        try {
          return scope.expandWords(p);
        } catch (err) {
          if (err instanceof ExpansionError) return fail(err.message);
          throw err;
        }
      });
      for (const p of ports) if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/i.test(p)) fail(`invalid port "${p}" (want port[/protocol] or start-end[/protocol])`);
      return { ...inst, ports };
    }
    case 'VOLUME': {
      const paths = inst.paths.map(x);
      if (paths.some((p) => p.trim() === '')) fail('VOLUME specified can not be an empty string');
      return { ...inst, paths };
    }
    case 'USER':
      return { ...inst, user: x(inst.user) };
    case 'WORKDIR':
      return { ...inst, path: x(inst.path) };
    case 'STOPSIGNAL': {
      const signal = x(inst.signal);
      const problem = checkSignal(signal);
      if (problem) fail(problem);
      return { ...inst, signal };
    }
    case 'FROM': {
      const out = { ...inst, image: x(inst.image) };
      const platform = opt(inst.platform);
      if (platform !== undefined) out.platform = platform;
      return out;
    }
    default:
      // SHELL, CMD, ENTRYPOINT, HEALTHCHECK, MAINTAINER, ONBUILD: taken as written.
      return inst;
  }
}

/**
 * A `--chown` that expands to an empty user or group (`${UNSET}:${UNSET}`) is refused: buildah
 * refuses it, BuildKit warns and makes the files root's, and a silent root owner is a trap.
 */
function checkChown(raw: string, expanded: string, scope: StageScope): string | undefined {
  const [user = '', group] = expanded.split(':', 2) as [string, string | undefined];
  if (user !== '' && group !== '') return undefined;
  const names = [...raw.matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!);
  const unset = [...new Set(names)].filter((n) => (scope.lookup(n) ?? '') === '');
  const which = user === '' ? 'user' : 'group';
  return unset.length > 0
    ? `--chown=${raw}: the ${which} is empty: ${unset.map((n) => `$${n}`).join(', ')} ${unset.length === 1 ? 'is' : 'are'} not set (declare it with ARG or ENV, or pass --build-arg)`
    : `--chown=${raw}: the ${which} is empty`;
}

function expandMount(m: Mount, x: (s: string) => string): Mount {
  const out = { ...m } as Record<string, unknown>;
  for (const [k, v] of Object.entries(m)) if (typeof v === 'string' && k !== 'type') out[k] = x(v);
  return out as unknown as Mount;
}

/**
 * A base image's OnBuild triggers as instructions, located at the FROM that inherited them. Each must
 * be one instruction and may not be ONBUILD, FROM or MAINTAINER (as BuildKit enforces).
 */
export function applyOnBuild(triggers: readonly string[], at: { file: string; line: number; escape?: string }): Instruction[] {
  return triggers.map((trigger) => {
    let parsed: Instruction[];
    try {
      parsed = parseInstructions(trigger, { file: at.file, escape: at.escape ?? '\\' });
    } catch (err) {
      if (err instanceof ContainerfileError) {
        throw new ContainerfileError({ file: at.file, line: at.line, instruction: 'ONBUILD' }, `base image trigger "${trigger}": ${err.detail}`);
      }
      throw err;
    }
    const loc = { file: at.file, line: at.line, instruction: 'ONBUILD' };
    if (parsed.length !== 1) throw new ContainerfileError(loc, `base image trigger "${trigger}" should be a single instruction`);
    const inst = parsed[0]!;
    if (inst.kind === 'ONBUILD' || inst.kind === 'FROM' || inst.kind === 'MAINTAINER') {
      throw new ContainerfileError(loc, `${inst.kind} isn't allowed as an ONBUILD trigger`);
    }
    // Report problems at the FROM that pulled the trigger in: that is the line the user can change.
    return { ...inst, line: at.line, endLine: at.line, file: at.file };
  });
}
