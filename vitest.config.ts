import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/reliability/**', 'node_modules/**', 'dist/**'],
    globalSetup: ['./test/setup/global.ts'],
    // Captures Azure Functions registrations outside the host (see the file).
    setupFiles: ['./test/functions/fake-core.ts'],
    pool: 'forks',
    // Most files wait on Azurite, the emulator or a child process rather than the CPU: three at once on two cores.
    maxWorkers: 3,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 20_000,
    reporters: process.env.CI ? ['default', 'json'] : ['default'],
    outputFile: { json: '.vitest-report.json' },
  },
});
