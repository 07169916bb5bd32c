// Test runner configuration: sources only (never dist/), forked processes so child-process tests are isolated.
import { relative } from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Vitest starts the files it has timed before longest first, and with no timings (a clean clone, as on CI) largest
 * first: there a small but slow integration file (a few seconds to start its processes and wait on them) could
 * start last and run alone while the other workers sit idle. With no timings, the files that start processes
 * (everything outside test/unit/) go first; the many short unit files then fill the workers to the end.
 */
class ProcessFilesFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const timed = (f: TestSpecification) => this.ctx.cache.getFileTestResults(`${f.project.name}:${relative(this.ctx.config.root, f.moduleId)}`) !== undefined;
    if (sorted.some(timed)) return sorted;
    const unit = (f: TestSpecification) => relative(this.ctx.config.root, f.moduleId).startsWith('test/unit/');
    return [...sorted.filter((f) => !unit(f)), ...sorted.filter(unit)];
  }
}

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['dist/**', 'node_modules/**'],
    pool: 'forks',
    // Most integration tests wait on child processes: several files at a time keep a 2-core machine busy (measured on
    // one: 2 workers 557 s, 73 % busy; 3 workers 459 s, 89 %; with 5,125 tests, 3 workers 591 s, 4 workers 546 s at
    // 90.6 % busy, every test passing; the default there is one worker).
    maxWorkers: 4,
    // Files that run in one worker share its module cache: the source keeps no module-level state (the
    // architecture test), and re-importing the proxy for each of ~360 files cost ~75 s of the run (import 113 s → 37 s).
    isolate: false,
    sequence: { sequencer: ProcessFilesFirst },
    // The processes tests start skip the heap trims (~0.16 s of CPU at each of several hundred starts; operations.md,
    // "Memory at idle"): test/integration/proxy-telemetry-standards.test.ts starts its proxy and control plane with
    // them, as a deployment runs.
    env: { TESSERA_HEAP_TRIM: 'off' },
    testTimeout: 30_000,
    hookTimeout: 30_000,
    setupFiles: [],
    // One PostgreSQL server per run, started when the first file asks for a database (test/helpers/postgres-database.ts).
    globalSetup: ['test/helpers/postgres-global-setup.ts'],
  },
});
