import { createHash } from 'node:crypto';
import { closeSync, ftruncateSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { loadCorpus, REPO_ROOT } from './corpus.js';
import { CoverageTracker } from './coverage.js';
import { mutate } from './mutate.js';
import { Rng } from './rng.js';
import type { FuzzTarget } from './target.js';
import { sleep } from '../../../src/util/sleep.js';

/**
 * The fuzzing loop: replay the corpus, then until the time is up run inputs made by mutating the
 * corpus (and inputs found to reach new code), by the target's fast-check generator, or by
 * splicing dictionary tokens. With coverage on, every batch of cases is measured with V8's block
 * coverage; a batch that reached new blocks is re-run case by case and the cases that did are kept
 * as corpus for further mutation. Property-based fuzzing with corpus mutation, not libFuzzer.
 */
export interface FuzzOptions {
  seconds: number;
  seed: number;
  /** Measure coverage and keep inputs that reach new blocks (costs ~2 ms per batch). */
  coverage?: boolean;
  /** Where findings go (`<dir>/<target>/`); none written when absent. */
  findingsDir?: string;
  /** A file the current input is written to before each case, so a watchdog can keep a hang. */
  currentFile?: string;
  /** Stop at the first finding. */
  stopOnFinding?: boolean;
  log?: (line: string) => void;
}

export interface Finding {
  kind: 'crash' | 'slow';
  /** Error class and message (first line). */
  summary: string;
  stack: string;
  input: Uint8Array;
  /** Where the input was written, when a findings directory was given. */
  file?: string;
  ms?: number;
  /** When it was found: executions and seconds since the run started. */
  after?: { executions: number; seconds: number };
}

export interface FuzzReport {
  target: string;
  executions: number;
  seconds: number;
  corpus: number;
  /** Inputs kept during the run for reaching new blocks. */
  discovered: number;
  blocks?: number;
  functions?: number;
  /** Functions in the target's sources that V8 reported (run or not). */
  functionsKnown?: number;
  findings: Finding[];
}

/** Cases between two coverage takes, at most (fewer while new blocks keep turning up). */
const BATCH = 32;

/** Milliseconds the contract allows for one input. */
export function budgetMs(t: FuzzTarget, length: number): number {
  return (t.budget?.baseMs ?? 250) + (t.budget?.perKiBMs ?? 20) * (length / 1024);
}

/** Runs one input through a target: the error it threw (a finding) or undefined, and how long it took. */
export async function execute(t: FuzzTarget, input: Uint8Array): Promise<{ error?: unknown; ms: number }> {
  // The budget is on this process's CPU time (all its threads: scrypt runs on libuv's pool), not
  // the wall clock: on the shared 2-core machine at load 17-18 one ignore file measured 40 to 460 ms
  // of wall time in three runs, and 26 to 42 ms of CPU time in five. A case that waits forever is the
  // watchdog's (run.ts), which goes by the wall clock.
  const start = process.cpuUsage();
  const cpuMs = () => {
    const d = process.cpuUsage(start);
    return (d.user + d.system) / 1000;
  };
  try {
    await t.run(input);
    return { ms: cpuMs() };
  } catch (error) {
    return { error, ms: cpuMs() };
  }
}

/** A crash's identity for de-duplication: its class and where in src/ (or the target) it was thrown. */
function signature(err: unknown): string {
  if (!(err instanceof Error)) return `non-error ${typeof err}`;
  const frame = (err.stack ?? '').split('\n').find((l) => l.includes('/src/') || l.includes('/test/fuzz/targets/'));
  if (frame) return `${err.name}|${frame.trim().replace(/:\d+\)?$/, '')}`;
  return `${err.name}|${err.message.replace(/\d+/g, 'N').slice(0, 60)}`;
}

function describe(err: unknown): { summary: string; stack: string } {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `\ncaused by: ${err.cause.stack}` : '';
    return { summary: `${err.name}: ${err.message.split('\n')[0]}`, stack: `${err.stack ?? err.message}${cause}` };
  }
  return { summary: `thrown non-Error: ${String(err)}`, stack: String(err) };
}

export function reproCommand(target: string, file: string): string {
  return `node --experimental-transform-types --import ./hack/lib/ts-resolve.ts test/fuzz/run.ts --repro ${target} ${file}`;
}

function saveFinding(dir: string, target: string, f: Finding): string {
  const hash = createHash('sha1').update(f.input).digest('hex').slice(0, 12);
  const out = join(dir, target);
  mkdirSync(out, { recursive: true });
  const file = join(out, `${f.kind}-${hash}`);
  writeFileSync(file, f.input);
  writeFileSync(
    `${file}.txt`,
    `target: ${target}\nkind: ${f.kind}${f.ms === undefined ? '' : ` (${f.ms.toFixed(0)} ms)`}\n${f.summary}\n\nreproduce:\n  ${reproCommand(target, file)}\n\n${f.stack}\n`,
  );
  return file;
}

export async function fuzz(t: FuzzTarget, opts: FuzzOptions): Promise<FuzzReport> {
  const log = opts.log ?? (() => {});
  const rng = new Rng(opts.seed);
  const corpus: Uint8Array[] = loadCorpus(t.name).map((c) => c.data);
  const seeds = corpus.length;
  const maxLength = t.maxLength ?? 64 * 1024;
  const findings: Finding[] = [];
  const seen = new Set<string>();
  const cov = opts.coverage ? new CoverageTracker(REPO_ROOT, t.sources) : undefined;
  let generated: Uint8Array[] = [];
  let genSeed = opts.seed;
  let executions = 0;
  let discovered = 0;
  let current: number | undefined;
  const startedAt = performance.now();
  let batchSize = BATCH;
  if (opts.currentFile) current = openSync(opts.currentFile, 'w');

  const record = (input: Uint8Array, kind: Finding['kind'], err: unknown, ms?: number): void => {
    const sig = kind === 'slow' ? `slow|${t.name}` : signature(err);
    if (seen.has(sig)) return;
    seen.add(sig);
    const f: Finding = { kind, ...describe(err), input, ms };
    if (opts.findingsDir) f.file = saveFinding(opts.findingsDir, t.name, f);
    findings.push(f);
    f.after = { executions, seconds: (performance.now() - startedAt) / 1000 };
    log(`${t.name}: ${kind} after ${executions} executions (${f.after.seconds.toFixed(1)} s): ${f.summary}${f.file ? ` -> ${f.file}` : ''}`);
  };

  /** Runs one case; true when it produced a finding. */
  const one = async (input: Uint8Array): Promise<boolean> => {
    if (current !== undefined) {
      ftruncateSync(current, 0);
      writeSync(current, input, 0, input.length, 0);
    }
    executions++;
    const r = await execute(t, input);
    if (r.error !== undefined) {
      record(input, 'crash', r.error);
      return true;
    }
    if (r.ms > budgetMs(t, input.length)) {
      // One slow case on a shared machine may be a GC pause or a neighbour's burst (the 600-second
      // run at load 20-27 saw an input take 913 ms that takes 80 ms alone): it counts only if the
      // fastest of three re-runs, spaced out, is over the budget too.
      let fastest = Number.POSITIVE_INFINITY;
      for (let i = 0; i < 3 && fastest > budgetMs(t, input.length); i++) {
        await sleep(250);
        const again = await execute(t, input);
        if (again.error !== undefined) break;
        fastest = Math.min(fastest, again.ms);
      }
      if (fastest !== Number.POSITIVE_INFINITY && fastest > budgetMs(t, input.length)) {
        record(
          input,
          'slow',
          new Error(`${fastest.toFixed(0)} ms of CPU for ${input.length} bytes, the fastest of 3 re-runs (budget ${budgetMs(t, input.length).toFixed(0)} ms)`),
          fastest,
        );
        return true;
      }
    }
    return false;
  };

  const nextInput = (): Uint8Array => {
    const roll = rng.below(100);
    if (t.generate && (roll < 30 || corpus.length === 0)) {
      if (generated.length === 0) generated = fc.sample(t.generate, { seed: genSeed++, numRuns: 64 });
      const g = generated.pop()!;
      return rng.chance(0.3) && corpus.length > 0 ? mutate(rng, g, { dictionary: t.dictionary, maxLength, others: corpus }) : g;
    }
    if (corpus.length === 0 || roll >= 95) {
      // From nothing: a few dictionary tokens and random bytes.
      const parts: Uint8Array[] = [];
      for (let i = 0, n = 1 + rng.below(8); i < n; i++) {
        parts.push(t.dictionary.length > 0 && rng.chance(0.7) ? Buffer.from(rng.pick(t.dictionary)) : Buffer.from([rng.below(256)]));
      }
      return new Uint8Array(Buffer.concat(parts));
    }
    return mutate(rng, rng.pick(corpus), { dictionary: t.dictionary, maxLength, others: corpus });
  };

  await t.setup?.();
  cov?.start();
  const start = performance.now();
  let deadline = Infinity;
  try {
    // The corpus first: every seed and regression input must keep passing. The clock starts after.
    for (const input of [...corpus]) {
      if ((await one(input)) && opts.stopOnFinding) break;
    }
    cov?.take();
    deadline = performance.now() + opts.seconds * 1000;
    while (performance.now() < deadline && !(opts.stopOnFinding && findings.length > 0)) {
      const batch: Uint8Array[] = [];
      for (let i = 0; i < batchSize && performance.now() < deadline; i++) {
        const input = nextInput();
        batch.push(input);
        if ((await one(input)) && opts.stopOnFinding) break;
      }
      const fresh = cov?.take();
      if (cov && fresh && fresh.size > 0) {
        // Something in the batch reached new code: re-run its cases until each new block is
        // attributed to one, and keep those cases. Batches shrink while discoveries are frequent.
        for (const input of batch) {
          if (fresh.size === 0) break;
          await execute(t, input);
          let added = false;
          for (const key of cov.probe()) {
            if (fresh.delete(key)) added = true;
          }
          if (added) {
            corpus.push(input);
            discovered++;
          }
        }
        batchSize = Math.max(4, batchSize >> 1);
      } else {
        batchSize = Math.min(BATCH, batchSize * 2);
      }
    }
  } finally {
    if (cov) {
      cov.take();
      cov.stop();
    }
    if (current !== undefined) closeSync(current);
    await t.teardown?.();
  }
  return {
    target: t.name,
    executions,
    seconds: (performance.now() - start) / 1000,
    corpus: seeds,
    discovered,
    blocks: cov?.blocks,
    functions: cov?.functions,
    functionsKnown: cov?.functionsKnown,
    findings,
  };
}
