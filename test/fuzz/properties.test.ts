import { it } from '@fast-check/vitest';
import { describe } from 'vitest';
import { TARGETS } from './targets/index.js';

/**
 * Each structure-aware generator as a plain fast-check property: unlike the fuzz loop, a failure
 * here is shrunk to a minimal counterexample (the quickest way to understand a finding of
 * `make fuzz`: paste its generator-made input's shape here). A fixed seed keeps `make test`
 * deterministic; 100 runs per target keep it quick.
 */
const withGenerator = TARGETS.filter((t) => t.generate !== undefined);

describe('fuzz targets as properties (shrinking counterexamples)', () => {
  for (const target of withGenerator) {
    it.prop([target.generate!], { numRuns: 100, seed: 14 })(`${target.name}: ${target.contract.split(';')[0]}`, async (input) => {
      await target.setup?.();
      try {
        await target.run(input);
      } finally {
        await target.teardown?.();
      }
    });
  }
});
