// A scenario run as a script of its own (`node dist/bench/scenarios/<name>.js`): the result JSON on stdout,
// progress on stderr, and its scratch (CA, database, logs) in a work dir that goes when the run ends, as
// `tessera bench` removes its own.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchScenario, ScenarioOptions } from './scenario.js';

export async function runStandalone(s: BenchScenario, o: Pick<ScenarioOptions, 'durationMs' | 'warmupMs' | 'rounds' | 'connections'>): Promise<void> {
  const workDir = await mkdtemp(join(tmpdir(), 'tessera-bench-'));
  try {
    const result = await s.run({ ...o, workDir, log: (line) => process.stderr.write(`${line}\n`), progress: () => {} });
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}
