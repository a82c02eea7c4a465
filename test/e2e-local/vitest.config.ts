import { defineConfig } from 'vitest/config';

// The end-to-end suite on the real node (`make test-e2e-local`): one node at a time, files in turn.
export default defineConfig({
  test: {
    include: ['test/e2e-local/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 900_000,
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
    reporters: ['default'],
  },
});
