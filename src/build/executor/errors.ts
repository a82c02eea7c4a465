import { StevedoreError } from '../../util/errors.js';

/** Where in the Containerfile a step came from, for messages: `Containerfile:12: RUN make`. */
export interface StepLocation {
  file: string;
  line: number;
  instruction: string;
  /** The instruction as written (continuations joined), shortened for messages. */
  text: string;
}

export function describeStep(loc: StepLocation): string {
  const text = loc.text.length > 120 ? `${loc.text.slice(0, 117)}...` : loc.text;
  return `${loc.file}:${loc.line}: ${text}`;
}

/**
 * A build step that ran and failed: a RUN exiting non-zero (its code and the last lines of its
 * output are kept, so a build pod's termination message can show them) or a COPY/ADD that could not
 * be done. Exit code 1 at the CLI, reason `BuildStepFailed` in the result file.
 */
export class BuildStepError extends StevedoreError {
  readonly location: StepLocation;
  readonly exitCode: number | undefined;
  readonly outputTail: string[];

  constructor(location: StepLocation, detail: string, opts: { exitCode?: number; outputTail?: string[]; cause?: unknown } = {}) {
    const tail = opts.outputTail && opts.outputTail.length > 0 ? `\n${opts.outputTail.map((l) => `  | ${l}`).join('\n')}` : '';
    super('BUILD_STEP_FAILED', `${describeStep(location)}: ${detail}${tail}`, { cause: opts.cause });
    this.location = location;
    this.exitCode = opts.exitCode;
    this.outputTail = opts.outputTail ?? [];
  }
}

/** A COPY/ADD source, a --from stage or image, or a base image that does not exist. */
export class SourceNotFoundError extends StevedoreError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super('SOURCE_NOT_FOUND', message, opts);
  }
}

/** The build was cancelled (Ctrl-C, SIGTERM, the build pod deleted): nothing was tagged. */
export class BuildInterruptedError extends StevedoreError {
  constructor(message = 'build interrupted: nothing was tagged') {
    super('INTERRUPTED', message);
  }
}
