import { defineConfig } from 'vitest/config';

/** `make test-sbom-peers`: the syft comparison, kept out of `make test` (syft is slow to build). */
export default defineConfig({
  test: {
    include: ['test/sbom/*.peer-test.ts'],
    testTimeout: 300_000,
    hookTimeout: 600_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
