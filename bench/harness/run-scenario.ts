// Runs one scenario under the harness: options from defaults + flags, a scratch work dir, progress, abort, JSON.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TesseraError } from '../../common/errors.js';
import { ensureWrk } from './peer-binaries.js';
import type { ProgressSink } from './progress.js';
import { writeWrkScript } from './wrk-load.js';
import type { BenchScenario, ScenarioOptions, ScenarioResult } from './scenario.js';

export interface RunOverrides {
  readonly durationMs?: number;
  readonly warmupMs?: number;
  readonly primeMs?: number;
  readonly rounds?: number;
  readonly connections?: number;
  readonly rateRps?: number;
  /** The closed-loop load generator (keep-alive and connection-per-request rows): autocannon and the harness's own (default), or wrk. */
  readonly load?: 'autocannon' | 'wrk';
  /** Another build's `dist/cli/tessera.js`, measured as a row of its own in the mesh scenarios (ScenarioOptions.baselineCli). */
  readonly baselineCli?: string;
  /** Keep the work dir (configs, logs, certificates) for inspection instead of deleting it. */
  readonly keepWorkDir?: boolean;
}

export const GLOBAL_DEFAULTS = { durationMs: 3_000, warmupMs: 1_000, primeMs: 0, rounds: 5, connections: 32 } as const;

export function effectiveOptions(s: BenchScenario, o: RunOverrides): Pick<ScenarioOptions, 'durationMs' | 'warmupMs' | 'primeMs' | 'rounds' | 'connections'> {
  const d = { ...GLOBAL_DEFAULTS, ...(s.defaults ?? {}) };
  return {
    durationMs: o.durationMs ?? d.durationMs,
    warmupMs: o.warmupMs ?? d.warmupMs,
    primeMs: o.primeMs ?? d.primeMs,
    rounds: o.rounds ?? d.rounds,
    connections: o.connections ?? d.connections,
  };
}

/**
 * A run with other connections than the scenario's default records that default, so the report keys it apart
 * (`mesh-c128` beside `mesh`) instead of letting the newer run replace the other.
 */
export function withDefaultConnections(r: ScenarioResult, defaultConnections: number): ScenarioResult {
  if (r.options['connections'] === undefined || r.options['connections'] === defaultConnections) return r;
  return { ...r, options: { ...r.options, defaultConnections } };
}

export async function runScenario(s: BenchScenario, o: RunOverrides, sink: ProgressSink, signal: AbortSignal): Promise<{ result: ScenarioResult; workDir: string | null }> {
  // Before the work dir: a missing generator is a precondition, with nothing to keep for inspection.
  const wrk = o.load === 'wrk' ? await wrkBinary(sink.log) : null;
  const workDir = await mkdtemp(join(tmpdir(), `tessera-bench-${s.name}-`));
  const eff = effectiveOptions(s, o);
  sink.log(
    `tessera bench ${s.name}: ${eff.rounds} rounds, ${eff.primeMs ? `priming ${eff.primeMs} ms per variant once, ` : ''}warm-up ${eff.warmupMs} ms + ${eff.durationMs} ms measured per variant, ${eff.connections} connections${o.rateRps ? `, ${o.rateRps} req/s` : ''}${o.load === 'wrk' ? ', load by wrk' : ''}; work dir ${workDir}`,
  );
  let ok = false;
  try {
    const opts: ScenarioOptions = {
      ...eff,
      workDir,
      log: sink.log,
      progress: sink.progress,
      signal,
      ...(o.rateRps ? { rateRps: o.rateRps } : {}),
      ...(wrk ? { wrk: { binary: wrk, script: await writeWrkScript(workDir) } } : {}),
      ...(o.baselineCli ? { baselineCli: o.baselineCli } : {}),
    };
    const result = withDefaultConnections(await s.run(opts), effectiveOptions(s, {}).connections);
    ok = true;
    return { result, workDir: o.keepWorkDir ? workDir : null };
  } finally {
    sink.done();
    // A run that failed keeps what it wrote for inspection; one that wrote nothing (an in-process scenario) leaves nothing.
    const empty = (await readdir(workDir).catch(() => [])).length === 0;
    if ((!o.keepWorkDir && ok) || (!ok && empty)) await rm(workDir, { recursive: true, force: true });
    else if (!ok) sink.log(`logs and configs kept in ${workDir}`);
  }
}

async function wrkBinary(log: (line: string) => void): Promise<string> {
  const found = await ensureWrk(log);
  if ('missing' in found) throw new TesseraError('TESSERA_ERR_BENCH_LOAD_GENERATOR_MISSING', found.missing);
  return found.wrk;
}
