import { defineConfig } from 'vitest/config';

/**
 * The reliability suite (`npm run test:reliability`; RELIABILITY_SIZE=small is the size CI runs). Not part of
 * `npm test`: vitest.config.ts excludes test/reliability/**. Files run one after another — each drives a whole
 * stack (Azurite, emulator, worker) and they would only measure each other on a small machine.
 */
export default defineConfig({
  test: {
    include: ['test/reliability/**/*.test.ts'],
    globalSetup: ['./test/setup/global.ts', './test/reliability/global.ts'],
    setupFiles: ['./test/functions/fake-core.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 120_000,
    teardownTimeout: 20_000,
    reporters: ['default'],
  },
});
