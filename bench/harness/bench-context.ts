// What every process-starting scenario shares: work dir, PKI, peer binaries, process group, rounds loop, result shape.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { TesseraError } from '../../common/errors.js';
import type { ProcessSupervisor } from '../../shared-io/process-supervisor.js';
import { TESSERA_CLI, type TopologyEnv } from '../peers/topology.js';
import { BenchPki, CLIENT_ID, type LeafFiles, SERVER_ID } from './bench-pki.js';
import { machineInfo } from './machine.js';
import { type PeerBinaries, ensurePeerBinaries } from './peer-binaries.js';
import { clockTicksPerSecond } from './proc-stat.js';
import { benchProcesses } from './bench-processes.js';
import type { Measurement, ScenarioOptions, ScenarioResult } from './scenario.js';
import { rotatedOrder } from './stats.js';

export interface BenchContext {
  readonly opts: ScenarioOptions;
  readonly group: ProcessSupervisor;
  readonly pki: BenchPki;
  readonly client: LeafFiles;
  readonly server: LeafFiles;
  readonly binaries: PeerBinaries;
  readonly clockTicksPerSecond: number;
  readonly env: TopologyEnv;
  readonly machine: Record<string, string | number>;
  readonly startedAt: string;
  /** Notes for the result (skipped variants, missing peers, caveats). */
  readonly notes: string[];
}

export async function withBenchContext<T>(opts: ScenarioOptions, peers: { nginx?: boolean; haproxy?: boolean }, fn: (ctx: BenchContext) => Promise<T>): Promise<T> {
  const startedAt = new Date().toISOString();
  const group = benchProcesses(opts.workDir, opts.signal);
  try {
    const binaries = await ensurePeerBinaries(opts.log, peers);
    const clk = clockTicksPerSecond();
    const pkiDir = join(opts.workDir, 'pki');
    await mkdir(pkiDir, { recursive: true });
    const pki = await BenchPki.create(pkiDir);
    const client = await pki.writeLeaf('client', CLIENT_ID);
    const server = await pki.writeLeaf('server', SERVER_ID);
    const machine = await machineInfo(clk);
    // TESSERA_BENCH_CLI benchmarks another build's proxy (e.g. a branch) with this harness.
    const tesseraCli = process.env['TESSERA_BENCH_CLI'] ?? TESSERA_CLI;
    const env: TopologyEnv = { group, pki, client, server, workDir: opts.workDir, binaries, tesseraCli };
    return await fn({ opts, group, pki, client, server, binaries, clockTicksPerSecond: clk, env, machine, startedAt, notes: [...binaries.notes] });
  } finally {
    await group.stopAll();
  }
}

export interface RoundVariant {
  readonly name: string;
  /** Measures this variant once; `tick` reports progress inside the measurement, in [0, 1]. */
  run(round: number, tick: (fraction: number) => void): Promise<Measurement>;
}

/** Every round measures every variant once, in an order rotated per round; one log line per measurement. */
export async function runRounds(opts: ScenarioOptions, variants: readonly RoundVariant[], describe: (m: Measurement) => string): Promise<Measurement[]> {
  const out: Measurement[] = [];
  const total = opts.rounds * variants.length;
  let done = 0;
  for (let round = 0; round < opts.rounds; round++) {
    const order = rotatedOrder(variants, round);
    for (let i = 0; i < order.length; i++) {
      // A variant that measures in-process CPU runs without giving the event loop a turn: yield one here, so that a
      // Ctrl-C arrived meanwhile reaches its handler (and the signal) before the next variant starts.
      await nextTurn();
      if (opts.signal?.aborted) throw new TesseraError('TESSERA_ERR_BENCH_ABORTED');
      const v = order[i]!;
      const label = `round ${round + 1}/${opts.rounds} ${v.name}`;
      opts.progress(done / total, label);
      const m = await v.run(round, (f) => opts.progress((done + Math.min(1, Math.max(0, f))) / total, label));
      // A window cut short by Ctrl-C measured processes being stopped: not a measurement.
      if (opts.signal?.aborted) throw new TesseraError('TESSERA_ERR_BENCH_ABORTED');
      const row: Measurement = { variant: v.name, round: round + 1, position: i + 1, ...m };
      out.push(row);
      done++;
      opts.log(`${label}: ${describe(row)}`);
    }
  }
  opts.progress(1, 'done');
  return out;
}

export function scenarioResult(
  ctx: Pick<BenchContext, 'opts' | 'machine' | 'startedAt'>,
  scenario: string,
  parts: { measurements: Measurement[]; summary: Measurement[]; headlines: string[]; notes: string[]; options?: Record<string, string | number> },
): ScenarioResult {
  const o = ctx.opts;
  return {
    scenario,
    startedAt: ctx.startedAt,
    machine: ctx.machine,
    options: {
      rounds: o.rounds,
      warmupMs: o.warmupMs,
      // 0 too: an unprimed run is recorded as one (its rerun command says --prime 0ms), never as the default.
      ...(o.primeMs !== undefined ? { primeMs: o.primeMs } : {}),
      durationMs: o.durationMs,
      connections: o.connections,
      ...(o.rateRps ? { rateRps: o.rateRps } : {}),
      ...(o.wrk ? { load: 'wrk' } : {}),
      ...(o.baselineCli ? { baselineCli: o.baselineCli } : {}),
      ...(parts.options ?? {}),
    },
    measurements: parts.measurements,
    summary: parts.summary,
    headlines: parts.headlines,
    notes: parts.notes,
  };
}
