// Test runner configuration: sources only (never dist/), forked processes so child-process tests are isolated.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['dist/**', 'node_modules/**'],
    pool: 'forks',
    // Most integration tests wait on child processes; two files at a time halve the wall time on a 2-core machine
    // (the default there is one worker).
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    setupFiles: [],
    // One PostgreSQL server per run, started when the first file asks for a database (test/helpers/postgres-database.ts).
    globalSetup: ['test/helpers/postgres-global-setup.ts'],
  },
});
