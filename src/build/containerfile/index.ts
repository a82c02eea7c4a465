/** The Containerfile front end: parse, plan stages, evaluate them. Pure logic, no I/O. */
export { parseContainerfile, parseInstructions, MAX_CONTAINERFILE_BYTES, type Containerfile, type ParseOptions } from './parser.js';
export type { Directives, CheckDirective } from './directives.js';
export * from './instructions.js';
export type { Heredoc } from './heredoc.js';
export type { Mount, MountType, BindMount, CacheMount, TmpfsMount, SecretMount, SshMount } from './mounts.js';
export { expand, expandWord, expandWords, referencedNames, type Vars, type LexOptions } from './expand.js';
export { ContainerfileError, ExpansionError } from './errors.js';
export { PLATFORM_ARGS, PROXY_ARGS, platformArgs } from './args.js';
export { StageScope } from './scope.js';
export {
  planStages,
  splitStages,
  resolveGlobalArgs,
  type BuildPlan,
  type PlanOptions,
  type PlannedStage,
  type Stage,
  type StageBase,
} from './stages.js';
export {
  evaluateStage,
  expandInstruction,
  applyOnBuild,
  type EvaluatedStep,
  type EvaluateOptions,
  type StageEvaluation,
} from './evaluate.js';
export { runScript, type RunScript } from './run-script.js';
