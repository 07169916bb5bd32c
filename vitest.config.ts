// Test runner configuration: sources only (never dist/), forked processes so child-process tests are isolated.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['dist/**', 'node_modules/**'],
    pool: 'forks',
    // Most integration tests wait on child processes: three files at a time keep a 2-core machine busy (measured on
    // one: 2 workers 557 s, 73 % busy; 3 workers 459 s, 89 %; the default there is one worker).
    maxWorkers: 3,
    // Files that run in one worker share its module cache: the source keeps no module-level state (the
    // architecture test), and re-importing the proxy for each of ~360 files cost ~75 s of the run (import 113 s → 37 s).
    isolate: false,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    setupFiles: [],
    // One PostgreSQL server per run, started when the first file asks for a database (test/helpers/postgres-database.ts).
    globalSetup: ['test/helpers/postgres-global-setup.ts'],
  },
});
