import { PROXY_ARGS } from './args.js';
import { expandWord, expandWords } from './expand.js';

/**
 * The variables of one build stage, for expansion and for RUN's environment:
 * - `env`: the base image's Env plus this stage's ENV (what ends up in the image config);
 * - `args`: ARGs declared in the stage (a declared ARG may have no value: it is then unset).
 * ENV wins over an ARG of the same name (Dockerfile reference, "Using ARG variables").
 */
export class StageScope {
  readonly env = new Map<string, string>();
  readonly args = new Map<string, string | undefined>();

  constructor(
    /** Global (pre-FROM) ARG values and the predefined platform args, after build-arg overrides. */
    private readonly global: ReadonlyMap<string, string>,
    private readonly buildArgs: ReadonlyMap<string, string>,
    private readonly escape: string = '\\',
    baseEnv: Iterable<readonly [string, string]> = [],
  ) {
    for (const [k, v] of baseEnv) this.env.set(k, v);
  }

  /** The lookup every expansion in the stage uses. */
  readonly lookup = (name: string): string | undefined => {
    const fromEnv = this.env.get(name);
    return fromEnv !== undefined ? fromEnv : this.args.get(name);
  };

  expand(word: string): string {
    return expandWord(word, this.lookup, { escape: this.escape });
  }

  /** Expands and splits on unquoted whitespace (EXPOSE). */
  expandWords(word: string): string[] {
    return expandWords(word, this.lookup, { escape: this.escape });
  }

  /**
   * `ARG name[=default]`: a build arg wins; else the default (expanded now, in this scope); else the
   * global value of the same name (so `ARG TARGETARCH` or a redeclared global ARG is usable).
   * Returns the value the ARG received, if any.
   */
  declareArg(name: string, rawDefault: string | undefined): string | undefined {
    let value: string | undefined;
    if (this.buildArgs.has(name)) value = this.buildArgs.get(name);
    else if (rawDefault !== undefined) value = this.expand(rawDefault);
    else value = this.global.get(name);
    this.args.set(name, value);
    return value;
  }

  setEnv(key: string, value: string): void {
    this.env.set(key, value);
  }

  /** The environment of a RUN: ARG values, then ENV (winning), then proxy build args no ARG named. */
  runEnv(): string[] {
    const merged = new Map<string, string>();
    for (const name of PROXY_ARGS) {
      const v = this.buildArgs.get(name);
      if (v !== undefined && !this.args.has(name)) merged.set(name, v);
    }
    for (const [k, v] of this.args) if (v !== undefined) merged.set(k, v);
    for (const [k, v] of this.env) merged.set(k, v);
    return [...merged].map(([k, v]) => `${k}=${v}`);
  }

  /** The image config Env after the stage: ENV only (ARGs never persist into the image). */
  imageEnv(): string[] {
    return [...this.env].map(([k, v]) => `${k}=${v}`);
  }
}

/** `K=V` strings (image config Env) to pairs; a bare `K` means K is set and empty. */
export function envPairs(env: readonly string[]): [string, string][] {
  return env.map((e) => {
    const eq = e.indexOf('=');
    return eq < 0 ? [e, ''] : [e.slice(0, eq), e.slice(eq + 1)];
  });
}
