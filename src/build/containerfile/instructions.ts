import type { Heredoc } from './heredoc.js';
import type { Mount } from './mounts.js';

/**
 * The typed AST of a Containerfile. Every string that the builder expands (paths, ENV values, flag
 * values) is kept as written: expansion needs the stage's variables and happens when a stage is
 * evaluated (`evaluateStage`, `expandInstruction`). Commands for RUN/CMD/ENTRYPOINT are never
 * expanded by the builder.
 */

export const INSTRUCTION_KINDS = [
  'FROM',
  'RUN',
  'COPY',
  'ADD',
  'ENV',
  'ARG',
  'LABEL',
  'EXPOSE',
  'VOLUME',
  'USER',
  'WORKDIR',
  'SHELL',
  'ENTRYPOINT',
  'CMD',
  'HEALTHCHECK',
  'STOPSIGNAL',
  'ONBUILD',
  'MAINTAINER',
] as const;
export type InstructionKind = (typeof INSTRUCTION_KINDS)[number];

interface Base {
  /** 1-based line where the instruction starts. */
  line: number;
  /** Last line it occupies (continuations and heredoc bodies included). */
  endLine: number;
  /** The logical line as written, continuations joined (heredoc bodies not included). */
  original: string;
  /** The file it came from, when the Containerfile was joined from several (`-f A -f B`); else the plan's file. */
  file?: string;
}

/** Exec form (`["a","b"]`, run directly) or shell form (a string for the stage's SHELL). */
export type CommandLine = { form: 'exec'; args: string[] } | { form: 'shell'; command: string };

export interface KeyValue {
  key: string;
  value: string;
}

export interface FromInstruction extends Base {
  kind: 'FROM';
  /** Image reference, `scratch`, or the name of an earlier stage (expanded with global ARGs). */
  image: string;
  /** `AS name`, lower-cased as BuildKit does. */
  stageName?: string;
  /** `--platform=...`, as written. */
  platform?: string;
}

export interface RunInstruction extends Base {
  kind: 'RUN';
  command: CommandLine;
  heredocs: Heredoc[];
  mounts: Mount[];
  network?: 'default' | 'none' | 'host';
  security?: 'sandbox' | 'insecure';
}

/** One COPY/ADD source: a path (or URL/Git for ADD) or an inline heredoc file. */
export type CopySource = { kind: 'path'; path: string } | { kind: 'heredoc'; name: string; content: string; expand: boolean };

interface CopyCommon extends Base {
  sources: CopySource[];
  dest: string;
  chown?: string;
  chmod?: string;
  link: boolean;
  exclude: string[];
}

export interface CopyInstruction extends CopyCommon {
  kind: 'COPY';
  /** A stage name or index, or an image reference. */
  from?: string;
  parents: boolean;
}

export interface AddInstruction extends CopyCommon {
  kind: 'ADD';
  checksum?: string;
  keepGitDir: boolean;
  /** `--unpack`: undefined means ADD's default (local archives unpack, remote ones do not). */
  unpack?: boolean;
}

export interface EnvInstruction extends Base {
  kind: 'ENV';
  pairs: KeyValue[];
  /** `ENV key value` (one pair, value is the rest of the line). */
  legacy: boolean;
}

export interface ArgInstruction extends Base {
  kind: 'ARG';
  args: { name: string; default?: string }[];
}

export interface LabelInstruction extends Base {
  kind: 'LABEL';
  pairs: KeyValue[];
  legacy: boolean;
}

export interface ExposeInstruction extends Base {
  kind: 'EXPOSE';
  ports: string[];
}

export interface VolumeInstruction extends Base {
  kind: 'VOLUME';
  paths: string[];
}

export interface UserInstruction extends Base {
  kind: 'USER';
  user: string;
}

export interface WorkdirInstruction extends Base {
  kind: 'WORKDIR';
  path: string;
}

export interface ShellInstruction extends Base {
  kind: 'SHELL';
  shell: string[];
}

export interface EntrypointInstruction extends Base {
  kind: 'ENTRYPOINT';
  command: CommandLine;
}

export interface CmdInstruction extends Base {
  kind: 'CMD';
  command: CommandLine;
}

/** Durations in nanoseconds, as the image config's Healthcheck stores them. */
export interface HealthcheckInstruction extends Base {
  kind: 'HEALTHCHECK';
  /** `NONE` disables an inherited check; `CMD` sets one (shell form becomes CMD-SHELL). */
  test: { type: 'NONE' } | { type: 'CMD'; command: CommandLine };
  intervalNs?: number;
  timeoutNs?: number;
  startPeriodNs?: number;
  startIntervalNs?: number;
  retries?: number;
}

export interface StopsignalInstruction extends Base {
  kind: 'STOPSIGNAL';
  signal: string;
}

export interface OnbuildInstruction extends Base {
  kind: 'ONBUILD';
  /** The trigger as it goes into the image config's OnBuild list (heredoc bodies included). */
  expression: string;
  /** The trigger, parsed (so errors surface when the Containerfile is parsed, not years later). */
  trigger: Instruction;
}

export interface MaintainerInstruction extends Base {
  kind: 'MAINTAINER';
  maintainer: string;
}

export type Instruction =
  | FromInstruction
  | RunInstruction
  | CopyInstruction
  | AddInstruction
  | EnvInstruction
  | ArgInstruction
  | LabelInstruction
  | ExposeInstruction
  | VolumeInstruction
  | UserInstruction
  | WorkdirInstruction
  | ShellInstruction
  | EntrypointInstruction
  | CmdInstruction
  | HealthcheckInstruction
  | StopsignalInstruction
  | OnbuildInstruction
  | MaintainerInstruction;

/** Picks the instruction type for a kind: `InstructionOf<'RUN'>` is `RunInstruction`. */
export type InstructionOf<K extends InstructionKind> = Extract<Instruction, { kind: K }>;
