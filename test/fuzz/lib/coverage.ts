import { Session } from 'node:inspector';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * V8's own block coverage (the inspector's Profiler.takePreciseCoverage, as c8 and NODE_V8_COVERAGE
 * use it), restricted to a target's source files. Each take returns counts since the last take;
 * V8 reports a nested block only when its count differs from its function's, so a block seen once
 * with count 0 and later not reported at all (while its function ran) has run as often as the
 * function: it is covered too.
 *
 * `blocks` counts distinct covered ranges (functions included), `functions` the functions entered.
 */
interface Range {
  startOffset: number;
  endOffset: number;
  count: number;
}
interface FunctionCoverage {
  functionName: string;
  ranges: Range[];
}
interface ScriptCoverage {
  url: string;
  functions: FunctionCoverage[];
}

export class CoverageTracker {
  #session = new Session();
  #prefixes: string[];
  #covered = new Set<string>();
  #functions = new Set<string>();
  /** Every function V8 reported in the sources, run or not (those of modules loaded). */
  #allFunctions = new Set<string>();
  /** Nested block keys known per function (reported at least once), for the "not reported = covered" rule. */
  #known = new Map<string, Map<string, [number, number]>>();

  constructor(root: string, sources: readonly string[]) {
    this.#prefixes = sources.map((s) => pathToFileURL(resolve(root, s)).href);
  }

  #post<T>(method: string, params?: object): T {
    let out: T | undefined;
    let failure: Error | null = null;
    // Same-thread inspector sessions answer synchronously.
    this.#session.post(method, params, (err, res) => {
      failure = err;
      out = res as T;
    });
    if (failure) throw failure;
    return out as T;
  }

  start(): void {
    this.#session.connect();
    this.#post('Profiler.enable');
    this.#post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  }

  stop(): void {
    try {
      this.#post('Profiler.stopPreciseCoverage');
      this.#post('Profiler.disable');
    } finally {
      this.#session.disconnect();
    }
  }

  /** Folds in what ran since the last take; returns how many blocks were covered for the first time. */
  take(): number {
    const { result } = this.#post<{ result: ScriptCoverage[] }>('Profiler.takePreciseCoverage');
    const before = this.#covered.size;
    for (const script of result) {
      if (!this.#prefixes.some((p) => script.url.startsWith(p))) continue;
      for (const fn of script.functions) {
        const [whole, ...nested] = fn.ranges;
        if (!whole) continue;
        const fnKey = `${script.url}#${whole.startOffset}`;
        this.#allFunctions.add(fnKey);
        if (whole.count === 0) continue;
        this.#functions.add(fnKey);
        this.#covered.add(fnKey);
        let known = this.#known.get(fnKey);
        if (!known) this.#known.set(fnKey, (known = new Map()));
        const reported = new Set<string>();
        const zero: Range[] = [];
        for (const r of nested) {
          const key = `${fnKey}:${r.startOffset}-${r.endOffset}`;
          reported.add(key);
          known.set(key, [r.startOffset, r.endOffset]);
          if (r.count > 0) this.#covered.add(key);
          else zero.push(r);
        }
        // Unreported: as often as its innermost reported enclosing range; covered unless that one is 0.
        for (const [key, [start, end]] of known) {
          if (reported.has(key) || this.#covered.has(key)) continue;
          if (!zero.some((z) => z.startOffset <= start && end <= z.endOffset)) this.#covered.add(key);
        }
      }
    }
    return this.#covered.size - before;
  }

  get blocks(): number {
    return this.#covered.size;
  }

  get functions(): number {
    return this.#functions.size;
  }

  get functionsKnown(): number {
    return this.#allFunctions.size;
  }
}
