// Scenario `issuance`: the real `tessera control-plane` process signing SVIDs over gRPC — join-token attestation
// (tokens made through admin.sock before each window) and renewal over mTLS — at concurrency 1 and 8: SVIDs per
// second, p50/p99 latency, and the control plane's CPU per SVID from /proc (the load generator is this process).
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createCsr } from '../../common/pki/csr.js';
import { generateKeyPair } from '../../common/pki/keys.js';
import type { ProcessSupervisor } from '../../shared-io/process-supervisor.js';
import { type RoundVariant, runRounds, scenarioResult } from '../harness/bench-context.js';
import { benchProcesses } from '../harness/bench-processes.js';
import {
  createJoinTokens,
  driveSignSvid,
  type IdentityClient,
  type IssuingServer,
  identityClient,
  renewingClient,
  startIssuingServer,
} from '../harness/issuance-client.js';
import { machineInfo } from '../harness/machine.js';
import { clockTicksPerSecond, sampleTree } from '../harness/proc-stat.js';
import { runStandalone } from '../harness/standalone.js';
import type { BenchScenario, ScenarioOptions, ScenarioResult } from '../harness/scenario.js';
import { ISSUANCE_VARIANTS, type IssuanceVariantSpec, issuanceHeadlines, issuanceMeasurement, issuanceSummary } from './issuance-summary.js';

const CSR_POOL = 32;
/** Upper bound on the tokens made for one window, whatever the warm-up rate suggests. */
const MAX_TOKENS = 50_000;

interface Fixture {
  readonly server: IssuingServer;
  readonly csrs: readonly Buffer[];
  /** Per lane: a TLS client (join tokens) and an mTLS client with that lane's own SVID (renewal). */
  readonly tlsClients: readonly IdentityClient[];
  readonly mtlsClients: readonly IdentityClient[];
  readonly clk: number;
  readonly notes: string[];
}

function variant(f: Fixture, v: IssuanceVariantSpec, opts: ScenarioOptions): RoundVariant {
  return {
    name: v.name,
    async run(round) {
      const lanes = (v.mode === 'join token' ? f.tlsClients : f.mtlsClients).slice(0, v.concurrency);
      const csr = (i: number) => f.csrs[i % f.csrs.length]!;
      let request: (i: number) => Record<string, unknown> | null;
      if (v.mode === 'join token') {
        // Warm up on a small batch, then make enough tokens for the window at the warm-up rate (with headroom).
        const warm = await createJoinTokens(f.server, 50 * v.concurrency, `r${round}-c${v.concurrency}-warm`);
        const w = await driveSignSvid(lanes, opts.warmupMs, (i) => (i < warm.length ? { csr: csr(i), join_token: warm[i] } : null));
        const rate = w.issued / Math.max(1, w.wallMs);
        const tokens = await createJoinTokens(f.server, Math.min(MAX_TOKENS, Math.ceil(rate * opts.durationMs * 1.5) + 10 * v.concurrency), `r${round}-c${v.concurrency}`);
        request = (i) => (i < tokens.length ? { csr: csr(i), join_token: tokens[i] } : null);
      } else {
        request = (i) => ({ csr: csr(i) });
        await driveSignSvid(lanes, opts.warmupMs, request);
      }
      const cpu0 = sampleTree(f.server.pid).cpuTicks;
      const client0 = process.cpuUsage();
      const d = await driveSignSvid(lanes, opts.durationMs, request);
      const client = process.cpuUsage(client0);
      const serverTicks = sampleTree(f.server.pid).cpuTicks - cpu0;
      if (d.firstError) f.notes.push(`${v.name}, round ${round + 1}: ${d.errors} failed calls, first: ${d.firstError}`);
      return {
        ...issuanceMeasurement({
          issued: d.issued,
          errors: d.errors,
          wallMs: d.wallMs,
          serverCpuMs: (serverTicks * 1000) / f.clk,
          clientCpuMs: (client.user + client.system) / 1000,
          p50Ms: d.hist.quantileMs(0.5),
          p99Ms: d.hist.quantileMs(0.99),
          maxMs: d.hist.quantileMs(1),
          ranOutOfTokens: d.exhausted,
        }),
        concurrency: v.concurrency,
      };
    },
  };
}

async function setUp(group: ProcessSupervisor, dir: string, lanes: number, clk: number): Promise<Fixture> {
  const server = await startIssuingServer(group, dir, 'control-plane');
  // CSRs are made before any window (a workload makes one per renewal, on its own CPU): a pool, reused.
  const csrs = await Promise.all(Array.from({ length: CSR_POOL }, () => createCsr(generateKeyPair(), {})));
  const tlsClients = Array.from({ length: lanes }, () => identityClient(server));
  // Each renewal lane is one workload: its first SVID from a join token, then renewals authenticated by it.
  const tokens = await createJoinTokens(server, lanes, 'renewer');
  const mtlsClients = await Promise.all(tokens.map((token, i) => renewingClient(server, tlsClients[i]!, token)));
  return { server, csrs, tlsClients, mtlsClients, clk, notes: [] };
}

async function run(opts: ScenarioOptions): Promise<ScenarioResult> {
  const startedAt = new Date().toISOString();
  const clk = clockTicksPerSecond();
  const machine = await machineInfo(clk);
  const dir = await mkdtemp(join(opts.workDir, 'issuance-'));
  const group = benchProcesses(dir, opts.signal);
  const lanes = Math.max(...ISSUANCE_VARIANTS.map((v) => v.concurrency));
  let fixture: Fixture | undefined;
  try {
    opts.progress(0, 'starting the control plane');
    fixture = await setUp(group, dir, lanes, clk);
    const f = fixture;
    const measurements = await runRounds(
      opts,
      ISSUANCE_VARIANTS.map((v) => variant(f, v, opts)),
      (m) => `${m['svidsPerSec']} SVIDs/s, p50 ${m['p50Ms']} ms, p99 ${m['p99Ms']} ms, server CPU ${m['serverCpuMsPerSvid']} ms/SVID${m['errors'] ? `, ${m['errors']} errors` : ''}`,
    );
    return scenarioResult({ opts, machine, startedAt }, 'issuance', {
      measurements,
      summary: issuanceSummary(measurements),
      headlines: issuanceHeadlines(measurements),
      notes: [
        'The real `tessera control-plane` process (CLI, default config but the per-identity rate limit lifted, logLevel warn, SQLite in a temp dir) on loopback; the load generator is this process, one grpc-js channel per lane, connected before the window (no handshake in the figures).',
        'join token: each SignSvid spends a fresh single-use token for its own workload ID (tokens made through admin.sock before the window, sized from a warm-up) with a no-SAN P-256 CSR; the server parses and verifies the CSR, looks up and spends the token, signs, and writes inventory + audit (SQLite and audit.log).',
        'renewal (mTLS): each lane is one workload renewing with its current SVID as the client certificate and no other evidence (chain verified against the bundle per call).',
        `CSRs come from a pool of ${CSR_POOL} made before the run. Server CPU = utime+stime of the control-plane process from /proc over the window (${clk} ticks/s) ÷ SVIDs issued; client CPU = this process.`,
        ...f.notes,
      ],
      options: { concurrencyLevels: '1, 8', csrPool: CSR_POOL },
    });
  } finally {
    for (const c of [...(fixture?.tlsClients ?? []), ...(fixture?.mtlsClients ?? [])]) c.close();
    await group.stopAll();
  }
}

export const issuanceScenario: BenchScenario = {
  name: 'issuance',
  summary: 'SVIDs signed per second, p50/p99 latency and control-plane CPU per SVID: join tokens and mTLS renewal, concurrency 1 and 8',
  defaults: { durationMs: 3_000, warmupMs: 500, rounds: 3, connections: 8 },
  run,
};

// Standalone: `node dist/bench/scenarios/issuance.js` prints the result JSON on stdout, progress on stderr.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runStandalone(issuanceScenario, { durationMs: 3_000, warmupMs: 500, rounds: 3, connections: 8 });
}
