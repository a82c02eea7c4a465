import { describe, expect, it } from 'vitest';
import { loadCorpus } from './lib/corpus.js';
import { execute, fuzz } from './lib/engine.js';
import { TARGETS } from './targets/index.js';

/**
 * The fuzz harness as part of `make test`: every committed corpus input (seeds and the regression
 * inputs of crashes found and fixed) keeps its target's contract, and each target then fuzzes for
 * about a second with a fixed seed and finds nothing. `make fuzz` runs the same targets for longer.
 */
const SECONDS = Number(process.env.FUZZ_TEST_SECONDS ?? 1);

describe.each(TARGETS.map((t) => [t.name, t] as const))('fuzz target %s', (_name, target) => {
  it('states a one-line contract and has a seed corpus', () => {
    expect(target.contract).not.toContain('\n');
    expect(target.contract.length).toBeGreaterThan(20);
    expect(loadCorpus(target.name).length).toBeGreaterThan(0);
  });

  it('keeps its contract on every corpus input', async () => {
    await target.setup?.();
    try {
      for (const input of loadCorpus(target.name)) {
        const r = await execute(target, input.data);
        expect(r.error, `${target.name}/${input.name}: ${r.error instanceof Error ? r.error.stack : String(r.error)}`).toBeUndefined();
      }
    } finally {
      await target.teardown?.();
    }
  });

  it(`finds nothing in ${SECONDS} s of fuzzing`, async () => {
    const report = await fuzz(target, { seconds: SECONDS, seed: 14 });
    expect(report.executions).toBeGreaterThan(loadCorpus(target.name).length);
    expect(report.findings.map((f) => `${f.kind}: ${f.summary}`)).toEqual([]);
  });
});
